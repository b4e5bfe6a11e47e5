<?php

declare(strict_types=1);

namespace Herald\Handler;

use Herald\Exception\InvalidArgumentException;
use Herald\Json;

/**
 * A client action as Herald hands it to a handler: what was sent, by which
 * connection, of which user. For `$connect`, also the upgrade request's
 * headers (lower-case names) and cookies, so the app's own session cookie
 * can say who connects.
 */
final class Request
{
    /**
     * @param mixed $details the client's details, JSON objects as arrays (null when absent)
     * @param string|int|float|null $id the client's id for the action, echoed by the reply
     * @param string $conn the connection, as `$connected` named it to the client
     * @param string|null $user the connection's user; null when anonymous
     * @param list<string> $groups the groups it joined at connect
     * @param array<string, mixed> $claims the token's other claims (or `$connect`'s)
     * @param array<string, string> $headers `$connect` only: the upgrade's headers, names in lower case
     * @param array<string, string> $cookies `$connect` only: the upgrade's cookies
     * @param string|null $traceparent the W3C `traceparent` header Herald sent with the request, if any
     * @param string|null $tracestate the W3C `tracestate` header that came with it, if any
     */
    public function __construct(
        public readonly string $action,
        public readonly mixed $details,
        public readonly string|int|float|null $id,
        public readonly string $conn,
        public readonly ?string $user,
        public readonly array $groups,
        public readonly array $claims,
        public readonly array $headers = [],
        public readonly array $cookies = [],
        public readonly ?string $traceparent = null,
        public readonly ?string $tracestate = null,
    ) {
    }

    /**
     * Reads a handler request's JSON body.
     *
     * @throws InvalidArgumentException when it is not a handler request
     */
    public static function fromJson(string $body, ?string $traceparent = null, ?string $tracestate = null): self
    {
        $request = Json::decode($body);
        if (!is_array($request) || array_is_list($request) && $request !== []) {
            throw new InvalidArgumentException('a handler request is a JSON object');
        }
        $field = static function (string $name, callable $valid, string $expected) use ($request) {
            $value = $request[$name] ?? null;
            if (!$valid($value)) {
                throw new InvalidArgumentException("handler request field \"{$name}\" must be {$expected}");
            }
            return $value;
        };
        $strings = static fn ($value) => is_array($value) && array_is_list($value)
            && count(array_filter($value, 'is_string')) === count($value);
        $stringMap = static fn ($value) => $value === null || is_array($value)
            && count(array_filter($value, 'is_string')) === count($value);
        return new self(
            $field('action', 'is_string', 'a string'),
            $request['details'] ?? null,
            $field('id', static fn ($v) => $v === null || is_string($v) || is_int($v) || is_float($v), 'a string or number'),
            $field('conn', 'is_string', 'a string'),
            $field('user', static fn ($v) => $v === null || is_string($v), 'a string or null'),
            $field('groups', $strings, 'an array of strings'),
            $field('claims', 'is_array', 'an object'),
            $field('headers', $stringMap, 'an object of strings') ?? [],
            $field('cookies', $stringMap, 'an object of strings') ?? [],
            $traceparent,
            $tracestate,
        );
    }

    /** A header of the `$connect` upgrade request, by any case of its name. */
    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }

    /** A cookie of the `$connect` upgrade request. */
    public function cookie(string $name): ?string
    {
        return $this->cookies[$name] ?? null;
    }

    /** Whether this is `$connect`: an upgrade to authenticate. */
    public function isConnect(): bool
    {
        return $this->action === '$connect';
    }
}
