<?php

declare(strict_types=1);

namespace Herald;

/** A user's connections across every edge. */
final class UserPresence
{
    public function __construct(
        /** Whether the user has at least one connection somewhere. */
        public readonly bool $online,
        /** How many. */
        public readonly int $conns,
    ) {
    }
}
