<?php

declare(strict_types=1);

namespace Herald;

/** A group's connections across every edge, and their distinct users. */
final class GroupPresence
{
    /** @param list<string> $users anonymous connections count in `$conns` only */
    public function __construct(
        public readonly int $conns,
        public readonly array $users,
    ) {
    }
}
