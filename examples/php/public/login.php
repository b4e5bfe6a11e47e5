<?php

/**
 * POST: logs in as the name given (no password: it is a demo) into the PHP
 * session, which is all Herald needs: `$connect` reads it (herald.php).
 */

declare(strict_types=1);

require __DIR__ . '/../src/app.php';

$name = trim((string) ($_POST['name'] ?? ''));
if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !preg_match('/^[\p{L}\p{N} _.-]{1,32}$/u', $name)) {
    http_response_code(400);
    echo 'A name is 1 to 32 letters, digits, spaces, dots, dashes or underscores. <a href="index.php">Back</a>';
    exit;
}
session_start();
session_regenerate_id(true);
$_SESSION['user'] = $name;
redirect('index.php');
