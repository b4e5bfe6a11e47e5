<?php

declare(strict_types=1);

require __DIR__ . '/../src/app.php';

session_start();
$_SESSION = [];
session_destroy();
redirect('index.php');
