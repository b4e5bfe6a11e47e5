<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\InvalidArgumentException;

/**
 * JSON in and out, the way Herald writes it: UTF-8 as it is, slashes
 * unescaped, `1.0` kept a float.
 *
 * @internal
 */
final class Json
{
    private const ENCODE = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION
        | JSON_THROW_ON_ERROR;

    public static function encode(mixed $value): string
    {
        try {
            return json_encode($value, self::ENCODE);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException('cannot encode as JSON: ' . $e->getMessage(), 0, $e);
        }
    }

    /** Decodes JSON objects as associative arrays. */
    public static function decode(string $json): mixed
    {
        try {
            return json_decode($json, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException('not JSON: ' . $e->getMessage(), 0, $e);
        }
    }

    /**
     * `$map` as a JSON object even when empty (`json_encode([])` is `[]`).
     *
     * @param array<string, mixed> $map
     */
    public static function object(array $map): array|\stdClass
    {
        return $map === [] ? new \stdClass() : $map;
    }
}
