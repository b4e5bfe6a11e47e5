<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\InvalidArgumentException;

/**
 * Checks on what a backend publishes, made before anything is sent, as
 * Herald makes them.
 *
 * @internal
 */
final class Action
{
    /** An action name is 1 to 128 characters of UTF-8. */
    public static function check(string $action): void
    {
        $chars = preg_match_all('/./su', $action);
        if ($chars === false || $chars < 1 || $chars > 128) {
            throw new InvalidArgumentException('an action must be 1 to 128 characters of UTF-8');
        }
    }

    /** A publish of `$action` to `$to`: a good name, and somebody to reach. */
    public static function checkPublish(Target $to, string $action): void
    {
        if ($to->isEmpty()) {
            throw new InvalidArgumentException('the target names nobody: give users, groups, conns or all');
        }
        self::check($action);
    }
}
