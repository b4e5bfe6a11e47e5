<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\InvalidArgumentException;

/**
 * Herald's NATS subjects, under one prefix (`herald` by default), exactly
 * as `herald_proto::subject` names them.
 *
 * A user id or group name becomes one subject token: a name made only of
 * `A-Z a-z 0-9 _ - : @` as it is; any other (with `.`, `*`, `>`, `~`,
 * spaces, non-ASCII, or empty) is `~` and the unpadded base64url of its
 * UTF-8 bytes. So every name works, and no name reaches another's subject.
 */
final class Subjects
{
    public function __construct(public readonly string $prefix = 'herald')
    {
        if (!preg_match('/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/D', $prefix)) {
            throw new InvalidArgumentException(
                "\"{$prefix}\" is not a subject prefix: use dot-separated tokens of A-Z a-z 0-9 _ -",
            );
        }
    }

    /** One subject token for a user id or group name. */
    public static function encodeToken(string $name): string
    {
        if ($name !== '' && preg_match('/^[A-Za-z0-9_:@-]+$/D', $name)) {
            return $name;
        }
        return '~' . rtrim(strtr(base64_encode($name), '+/', '-_'), '=');
    }

    /** Every connection of user `$user`. */
    public function user(string $user): string
    {
        return "{$this->prefix}.user." . self::encodeToken($user);
    }

    /** Every connection in group `$group`. */
    public function group(string $group): string
    {
        return "{$this->prefix}.group." . self::encodeToken($group);
    }

    /** One connection, by the id it got in `$connected`. */
    public function conn(string $conn): string
    {
        return "{$this->prefix}.conn." . self::connId($conn);
    }

    /** Every connection. */
    public function all(): string
    {
        return "{$this->prefix}.all";
    }

    /** Control operations for every connection of user `$user`. */
    public function controlUser(string $user): string
    {
        return "{$this->prefix}.ctl.user." . self::encodeToken($user);
    }

    /** Control operations for one connection. */
    public function controlConn(string $conn): string
    {
        return "{$this->prefix}.ctl.conn." . self::connId($conn);
    }

    /**
     * Every subject `$target` names.
     *
     * @return list<string>
     */
    public function forTarget(Target $target): array
    {
        $conns = array_map($this->conn(...), $target->conns);
        if ($target->all) {
            return [$this->all()];
        }
        return [...array_map($this->user(...), $target->users), ...array_map($this->group(...), $target->groups), ...$conns];
    }

    /**
     * A connection id, `<edge>.<n>`, checked: it becomes two subject tokens,
     * so anything else could reach other subjects.
     */
    public static function connId(string $conn): string
    {
        if (!preg_match('/^[A-Za-z0-9_-]{1,64}\.(0|[1-9][0-9]{0,19})$/D', $conn)) {
            throw new InvalidArgumentException("\"{$conn}\" is not a connection id (expected <edge>.<number>)");
        }
        return $conn;
    }
}
