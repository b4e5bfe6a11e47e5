<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\InvalidArgumentException;

/**
 * Tokens for pages that connect with `?token=`: HS256 JWTs signed with the
 * edges' `HERALD_JWT_SECRET`, carrying `sub` (the user), `groups` (joined at
 * connect) and `exp`. Any other claim is passed to handlers as `claims`,
 * except `join` (group patterns the client may `$join` itself) and
 * `aud`/`iss` (checked by the edge when configured).
 *
 * ```php
 * $token = Herald\Token::mint($secret, $userId, groups: ['room:lobby'], ttl: 3600);
 * ```
 */
final class Token
{
    /** Claims the token's own arguments set; `$claims` may not repeat them. */
    private const RESERVED = ['sub', 'groups', 'exp'];

    /**
     * @param list<string> $groups joined at connect
     * @param int $ttl seconds until it expires
     * @param array<string, mixed> $claims more claims, e.g. `['join' => ['room:*'], 'plan' => 'pro']`
     * @param int|null $now the current Unix time; `time()` when null
     */
    public static function mint(
        string $secret,
        string|int $user,
        array $groups = [],
        int $ttl = 3600,
        array $claims = [],
        ?int $now = null,
    ): string {
        if ($secret === '') {
            throw new InvalidArgumentException('the token secret is empty');
        }
        if ($ttl <= 0) {
            throw new InvalidArgumentException("the token's ttl must be positive, not {$ttl}");
        }
        foreach (self::RESERVED as $name) {
            if (array_key_exists($name, $claims)) {
                throw new InvalidArgumentException("claim \"{$name}\" is set by its own argument");
            }
        }
        $payload = ['sub' => (string) $user, 'groups' => Target::of(groups: $groups)->groups,
            'exp' => ($now ?? time()) + $ttl] + $claims;
        $signed = self::base64url(Json::encode(['alg' => 'HS256', 'typ' => 'JWT'])) . '.'
            . self::base64url(Json::encode($payload));
        return $signed . '.' . self::base64url(hash_hmac('sha256', $signed, $secret, true));
    }

    private static function base64url(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }
}
