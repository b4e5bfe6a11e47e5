<?php

/**
 * Runs SDK calls for the integration tests (tests/tests/php), one JSON
 * command per line on stdin, one JSON answer per line on stdout:
 *
 *     {"new": "Herald\\Client", "as": "api", "args": ["http://...", "key"]}
 *     {"on": "api", "call": "publishToUsers", "args": [["ann"], "news", {"n": 1}]}
 *     {"static": "Herald\\Token::mint", "args": ["secret", "ann"]}
 *     {"extensions": true}
 *
 * answers `{"ok": <result>}`, or `{"error": {"class", "status", "message"}}`
 * for an exception. Arguments given as an object with string keys are named
 * arguments; `{"$target": {...}}` is `Target::of(...)`.
 */

declare(strict_types=1);

require __DIR__ . '/../../autoload.php';

use Herald\Exception\ApiException;
use Herald\Target;

/** @var array<string, object> $objects */
$objects = [];

function arguments(array $args): array
{
    return array_map(
        static fn ($arg) => is_array($arg) && array_keys($arg) === ['$target'] ? Target::of(...$arg['$target']) : $arg,
        $args,
    );
}

function plain(mixed $result): mixed
{
    return is_object($result) ? get_object_vars($result) : $result;
}

function run(array $command, array &$objects): mixed
{
    $args = arguments($command['args'] ?? []);
    if (isset($command['new'])) {
        $objects[$command['as']] = new $command['new'](...$args);
        return null;
    }
    if (isset($command['static'])) {
        return plain(($command['static'])(...$args));
    }
    if (isset($command['call'])) {
        $object = $objects[$command['on']] ?? throw new LogicException("no object {$command['on']}");
        return plain($object->{$command['call']}(...$args));
    }
    if (isset($command['extensions'])) {
        return get_loaded_extensions();
    }
    throw new LogicException('unknown command ' . json_encode($command));
}

while (($line = fgets(STDIN)) !== false) {
    try {
        $answer = ['ok' => run(json_decode($line, true, 512, JSON_THROW_ON_ERROR), $objects)];
    } catch (Throwable $e) {
        $answer = ['error' => [
            'class' => $e::class,
            'status' => $e instanceof ApiException || $e instanceof Herald\Pusher\ApiErrorException ? $e->getStatus() : null,
            'message' => $e->getMessage(),
        ]];
    }
    echo json_encode($answer, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
}
