<?php

declare(strict_types=1);

namespace Herald;

/**
 * The shortcuts to `publish()` that {@see Client} and
 * {@see Nats\Publisher} share: to users, groups, connections, everyone.
 *
 * @internal
 */
trait PublishShortcuts
{
    /**
     * Publishes `{"action", "details"}` to everyone `$to` names, except the
     * connection `$excludeConn`.
     *
     * @return int the number of subjects published to
     */
    abstract public function publish(Target $to, string $action, mixed $details = null, ?string $excludeConn = null): int;

    /** @param iterable<string|int> $users */
    public function publishToUsers(iterable $users, string $action, mixed $details = null, ?string $excludeConn = null): int
    {
        return $this->publish(Target::of(users: $users), $action, $details, $excludeConn);
    }

    /** @param iterable<string> $groups */
    public function publishToGroups(iterable $groups, string $action, mixed $details = null, ?string $excludeConn = null): int
    {
        return $this->publish(Target::of(groups: $groups), $action, $details, $excludeConn);
    }

    /** @param iterable<string> $conns */
    public function publishToConns(iterable $conns, string $action, mixed $details = null, ?string $excludeConn = null): int
    {
        return $this->publish(Target::of(conns: $conns), $action, $details, $excludeConn);
    }

    public function publishToAll(string $action, mixed $details = null, ?string $excludeConn = null): int
    {
        return $this->publish(Target::all(), $action, $details, $excludeConn);
    }
}
