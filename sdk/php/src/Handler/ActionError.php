<?php

declare(strict_types=1);

namespace Herald\Handler;

use Herald\Exception\HeraldException;

/**
 * Thrown from an action's handler, becomes the client's error reply:
 * `throw new ActionError(403, 'not a member of this room')`.
 */
final class ActionError extends \RuntimeException implements HeraldException
{
    public function __construct(public readonly int $status, string $message)
    {
        parent::__construct($message, $status);
    }
}
