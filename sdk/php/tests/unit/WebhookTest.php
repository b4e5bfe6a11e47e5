<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\InvalidArgumentException;
use Herald\Exception\SignatureException;
use Herald\Webhook;
use PHPUnit\Framework\TestCase;

final class WebhookTest extends TestCase
{
    private const NOW = 1767225600;

    private static function refusal(?string $timestamp, string $body, ?string $signature, int $now = self::NOW): string
    {
        try {
            (new Webhook('s3cret', 60))->verify($timestamp, $body, $signature, $now);
        } catch (SignatureException $e) {
            return $e->getMessage();
        }
        self::fail('the request was taken');
    }

    public function testAGoodSignatureIsTakenAndItsCaseDoesNotMatter(): void
    {
        $webhook = new Webhook('s3cret', 60);
        $signature = $webhook->sign((string) self::NOW, '{"a":1}');
        $webhook->verify((string) self::NOW, '{"a":1}', $signature, self::NOW + 60);
        $webhook->verify((string) self::NOW, '{"a":1}', 'v1=' . strtoupper(substr($signature, 3)), self::NOW);
        self::assertTrue($webhook->isValid((string) self::NOW, '{"a":1}', $signature, self::NOW - 60));
    }

    public function testEachRefusalSaysWhy(): void
    {
        $webhook = new Webhook('s3cret', 60);
        $good = $webhook->sign((string) self::NOW, '{}');
        self::assertSame('missing Herald-Timestamp header', self::refusal(null, '{}', $good));
        self::assertSame('missing Herald-Signature header', self::refusal((string) self::NOW, '{}', ''));
        self::assertSame('Herald-Timestamp is not a Unix time in seconds', self::refusal('-5', '{}', $good));
        self::assertSame(
            'stale request: its timestamp is 61 s from now (tolerance 60 s)',
            self::refusal((string) self::NOW, '{}', $good, self::NOW + 61),
        );
        self::assertSame('Herald-Signature is not v1=<64 hex digits>', self::refusal((string) self::NOW, '{}', 'sha256=00'));
        self::assertSame(
            'wrong signature: the body, the timestamp or the secret differ',
            self::refusal((string) self::NOW, '{ }', $good),
        );
        self::assertFalse((new Webhook('other'))->isValid((string) self::NOW, '{}', $good, self::NOW));
    }

    public function testAnEmptySecretIsRefused(): void
    {
        $this->expectException(InvalidArgumentException::class);
        new Webhook('');
    }
}
