<?php

declare(strict_types=1);

// The SDK as an app without Composer loads it.
require __DIR__ . '/../autoload.php';

// Handlers log refusals with error_log(); keep them out of the test output.
ini_set('error_log', '/dev/null');
