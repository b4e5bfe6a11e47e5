<?php

/**
 * An ordinary form POST that pushes to a room through the SDK: what any PHP
 * page (a comment form, an admin action) does to reach browsers at once.
 * Answers 303 back to the room, or 204 when the page posted it in the
 * background (`stay=1`), or JSON when asked for it.
 */

declare(strict_types=1);

require __DIR__ . '/../src/app.php';

use Herald\Exception\HeraldException;

$user = current_user();
$room = known_room($_POST['room'] ?? null);
$text = trim((string) ($_POST['text'] ?? ''));
if ($user === null) {
    http_response_code(401);
    exit('Log in first.');
}
if ($_SERVER['REQUEST_METHOD'] !== 'POST' || $room === null || !valid_text($text)) {
    http_response_code(400);
    exit('Post to a known room, with a text of 1 to 500 characters.');
}
try {
    $subjects = publish_message($room, $user, $text, 'form');
} catch (HeraldException $e) {
    http_response_code(502);
    error_log('post.php: ' . $e->getMessage());
    exit('Herald could not take the message: ' . html($e->getMessage()));
}
if (str_contains($_SERVER['HTTP_ACCEPT'] ?? '', 'application/json')) {
    header('Content-Type: application/json');
    exit(json_encode(['published' => $subjects]));
}
if (($_POST['stay'] ?? '') === '1') {
    http_response_code(204);
    exit;
}
redirect('index.php?room=' . rawurlencode($room));
