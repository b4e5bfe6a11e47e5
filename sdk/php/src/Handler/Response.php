<?php

declare(strict_types=1);

namespace Herald\Handler;

use Herald\Action;
use Herald\Exception\InvalidArgumentException;
use Herald\Json;
use Herald\Target;

/**
 * A handler's answer: a reply to the client (details, or an error), or no
 * reply at all; and effects Herald applies besides (join, leave, disconnect
 * the connection, publish to others). For `$connect`: who the connection is.
 *
 * ```php
 * return Response::details(['ok' => true])
 *     ->join('room:' . $room)
 *     ->publish(Target::groups('room:' . $room), 'chat/joined', ['user' => $request->user]);
 * ```
 */
final class Response implements \JsonSerializable
{
    /** @var array<string, mixed> the answer as JSON reads it */
    private array $answer;
    /** @var list<array<string, mixed>> */
    private array $effects = [];

    private function __construct(array $answer)
    {
        $this->answer = $answer;
    }

    /** A reply carrying `$details`. */
    public static function details(mixed $details): self
    {
        return new self(['details' => $details]);
    }

    /** A reply with no details (`null`). */
    public static function empty(): self
    {
        return new self([]);
    }

    /**
     * An error reply: the client gets `<action>:error` with
     * `{"code", "message"}`. Codes follow HTTP (400, 403, 404, ...), or are
     * the application's own up to 4999.
     */
    public static function error(int $code, string $message): self
    {
        if ($code < 100 || $code > 4999) {
            throw new InvalidArgumentException("an error code is between 100 and 4999, not {$code}");
        }
        return new self(['error' => ['code' => $code, 'message' => $message]]);
    }

    /** Nothing is sent back to the client (effects still apply). */
    public static function noReply(): self
    {
        return new self(['noreply' => true]);
    }

    /**
     * `$connect`: the connection is `$user` (null: anonymous), joins
     * `$groups`, and carries `$claims` to every later handler request.
     *
     * @param list<string> $groups
     * @param array<string, mixed> $claims
     */
    public static function connect(string|int|null $user, array $groups = [], array $claims = []): self
    {
        return new self([
            'user' => $user === null ? null : (string) $user,
            'groups' => Target::of(groups: $groups)->groups,
            'claims' => Json::object($claims),
        ]);
    }

    /**
     * `$connect` or `$join` refused: 401 (not logged in) or 403 (not
     * allowed); the upgrade gets that status.
     */
    public static function refuse(int $code = 401, string $message = 'not logged in'): self
    {
        return self::error($code, $message);
    }

    /** The connection joins `$group`. */
    public function join(string $group): self
    {
        $this->effects[] = ['join' => $group];
        return $this;
    }

    /** The connection leaves `$group`. */
    public function leave(string $group): self
    {
        $this->effects[] = ['leave' => $group];
        return $this;
    }

    /** The connection is closed with `$code` (1000, or 3000 to 4999). */
    public function disconnect(int $code = 4000, string $reason = ''): self
    {
        $this->effects[] = ['disconnect' => ['code' => $code, 'reason' => $reason]];
        return $this;
    }

    /** `{"action", "details"}` is published to `$to`. */
    public function publish(Target $to, string $action, mixed $details = null): self
    {
        Action::checkPublish($to, $action);
        $this->effects[] = ['publish' => ['to' => $to->toArray(), 'action' => $action, 'details' => $details]];
        return $this;
    }

    /** The answer as Herald reads it. */
    public function toArray(): array
    {
        return $this->effects === [] ? $this->answer : $this->answer + ['effects' => $this->effects];
    }

    public function jsonSerialize(): array|\stdClass
    {
        return Json::object($this->toArray());
    }

    public function toJson(): string
    {
        return Json::encode($this);
    }
}
