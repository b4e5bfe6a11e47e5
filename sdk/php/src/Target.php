<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\InvalidArgumentException;

/**
 * Whom a publish reaches: every user, group and connection named, or
 * everyone. Each is a subject of its own, published once: a connection named
 * twice (by its user and by one of its groups) gets the frame twice.
 *
 * User ids may be given as integers (`Target::users(42)`); Herald's user ids
 * are strings, and 42 is user "42".
 */
final class Target
{
    /**
     * @param list<string> $users
     * @param list<string> $groups
     * @param list<string> $conns
     */
    private function __construct(
        public readonly array $users,
        public readonly array $groups,
        public readonly array $conns,
        public readonly bool $all,
    ) {
    }

    /**
     * Any mix, e.g. `Target::of(users: ['ann'], groups: ['room:1'])`.
     *
     * @param iterable<string|int> $users
     * @param iterable<string> $groups
     * @param iterable<string> $conns
     */
    public static function of(iterable $users = [], iterable $groups = [], iterable $conns = [], bool $all = false): self
    {
        return new self(self::names($users, 'user'), self::names($groups, 'group'), self::names($conns, 'conn'), $all);
    }

    public static function users(string|int ...$users): self
    {
        return self::of(users: $users);
    }

    public static function groups(string ...$groups): self
    {
        return self::of(groups: $groups);
    }

    /** Connections, by the id each got in `$connected`. */
    public static function conns(string ...$conns): self
    {
        return self::of(conns: $conns);
    }

    /** Every connection. */
    public static function all(): self
    {
        return new self([], [], [], true);
    }

    public function isEmpty(): bool
    {
        return !$this->all && $this->users === [] && $this->groups === [] && $this->conns === [];
    }

    /** The target as Herald's JSON reads it: only what is set. */
    public function toArray(): array
    {
        return array_filter(
            ['users' => $this->users, 'groups' => $this->groups, 'conns' => $this->conns, 'all' => $this->all],
            static fn ($value) => $value !== [] && $value !== false,
        );
    }

    /**
     * @param iterable<mixed> $names
     * @return list<string>
     */
    private static function names(iterable $names, string $what): array
    {
        $list = [];
        foreach ($names as $name) {
            if (is_int($name) && $what === 'user') {
                $name = (string) $name;
            }
            if (!is_string($name)) {
                throw new InvalidArgumentException("a {$what} must be a string, not " . get_debug_type($name));
            }
            $list[] = $name;
        }
        return $list;
    }
}
