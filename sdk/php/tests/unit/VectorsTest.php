<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Subjects;
use Herald\Token;
use Herald\Webhook;
use PHPUnit\Framework\TestCase;

/**
 * The vectors Herald's Rust code checks too (tests/tests/shared_vectors.rs):
 * the same inputs give the same signatures, subject tokens and JWTs here.
 */
final class VectorsTest extends TestCase
{
    private static function vectors(string $name): array
    {
        $file = __DIR__ . '/../../../../proto/vectors/sdk-vectors.json';
        $vectors = json_decode((string) file_get_contents($file), true, 512, JSON_THROW_ON_ERROR)[$name];
        self::assertNotEmpty($vectors, $name);
        return $vectors;
    }

    public function testWebhookSignatures(): void
    {
        foreach (self::vectors('webhook_signatures') as $v) {
            self::assertSame($v['signature'], (new Webhook($v['secret']))->sign($v['timestamp'], $v['body']));
        }
    }

    public function testWebhookVerifications(): void
    {
        foreach (self::vectors('webhook_verifications') as $v) {
            $webhook = new Webhook($v['secret'], $v['tolerance']);
            $valid = $webhook->isValid($v['timestamp'], $v['body'], $v['signature'], $v['now']);
            self::assertSame($v['valid'], $valid, $v['why']);
        }
    }

    public function testSubjectTokens(): void
    {
        foreach (self::vectors('subject_tokens') as $v) {
            self::assertSame($v['token'], Subjects::encodeToken($v['name']), $v['name']);
        }
    }

    public function testHs256Tokens(): void
    {
        foreach (self::vectors('hs256_tokens') as $v) {
            $jwt = Token::mint($v['secret'], $v['user'], $v['groups'], $v['ttl'], $v['claims'], $v['now']);
            self::assertSame($v['jwt'], $jwt, $v['user']);
        }
    }
}
