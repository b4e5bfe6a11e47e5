<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\SignatureException;

/**
 * The signature Herald puts on every request it sends to an HTTP handler
 * (actions, `$connect`, `$join`, `$disconnect` notices), as
 * `herald_proto::webhook` makes it:
 *
 *     Herald-Timestamp: <Unix seconds>
 *     Herald-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 *
 * A request is taken only when the HMAC over its raw body matches (compared
 * in constant time) and its timestamp is within the tolerance of now, so a
 * captured request cannot be replayed later than that.
 */
final class Webhook
{
    public const TIMESTAMP_HEADER = 'Herald-Timestamp';
    public const SIGNATURE_HEADER = 'Herald-Signature';
    /** Seconds a timestamp may be from now, either way (clock skew). */
    public const DEFAULT_TOLERANCE = 300;

    public function __construct(
        #[\SensitiveParameter] private readonly string $secret,
        private readonly int $tolerance = self::DEFAULT_TOLERANCE,
    ) {
        if ($secret === '') {
            throw new Exception\InvalidArgumentException('the webhook secret is empty');
        }
        if ($tolerance < 0) {
            throw new Exception\InvalidArgumentException("the tolerance must not be negative, not {$tolerance}");
        }
    }

    /** The `Herald-Signature` value for `$body` sent at `$timestamp`. */
    public function sign(string $timestamp, string $body): string
    {
        return 'v1=' . hash_hmac('sha256', $timestamp . '.' . $body, $this->secret);
    }

    /**
     * Checks a request's signature; throws when it is refused, saying why.
     *
     * @param string|null $timestamp the `Herald-Timestamp` header (null: missing)
     * @param string $body the raw body, exactly as received
     * @param string|null $signature the `Herald-Signature` header (null: missing)
     * @param int|null $now the current Unix time; `time()` when null
     * @throws SignatureException
     */
    public function verify(?string $timestamp, string $body, ?string $signature, ?int $now = null): void
    {
        if ($timestamp === null || $timestamp === '') {
            throw new SignatureException('missing ' . self::TIMESTAMP_HEADER . ' header');
        }
        if ($signature === null || $signature === '') {
            throw new SignatureException('missing ' . self::SIGNATURE_HEADER . ' header');
        }
        if (!preg_match('/^[0-9]{1,19}$/D', $timestamp)) {
            throw new SignatureException(self::TIMESTAMP_HEADER . ' is not a Unix time in seconds');
        }
        $skew = abs(($now ?? time()) - (int) $timestamp);
        if ($skew > $this->tolerance) {
            throw new SignatureException(
                "stale request: its timestamp is {$skew} s from now (tolerance {$this->tolerance} s)",
            );
        }
        if (!preg_match('/^v1=[0-9a-fA-F]{64}$/D', $signature)) {
            throw new SignatureException(self::SIGNATURE_HEADER . ' is not v1=<64 hex digits>');
        }
        if (!hash_equals($this->sign($timestamp, $body), strtolower($signature))) {
            throw new SignatureException('wrong signature: the body, the timestamp or the secret differ');
        }
    }

    /** Whether the signature is good; {@see verify()} says why not. */
    public function isValid(?string $timestamp, string $body, ?string $signature, ?int $now = null): bool
    {
        try {
            $this->verify($timestamp, $body, $signature, $now);
            return true;
        } catch (SignatureException) {
            return false;
        }
    }
}
