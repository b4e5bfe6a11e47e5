<?php

/**
 * The SDK without Composer: `require 'path/to/sdk/php/autoload.php';`.
 *
 * The same PSR-4 mapping as composer.json: class Herald\X\Y lives in
 * src/X/Y.php.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    $prefix = 'Herald\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
