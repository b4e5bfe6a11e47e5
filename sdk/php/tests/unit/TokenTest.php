<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\InvalidArgumentException;
use Herald\Token;
use PHPUnit\Framework\TestCase;

final class TokenTest extends TestCase
{
    private static function part(string $jwt, int $index): array
    {
        $part = explode('.', $jwt)[$index];
        return json_decode(base64_decode(strtr($part, '-_', '+/')), true, 512, JSON_THROW_ON_ERROR);
    }

    public function testCarriesSubGroupsExpAndMoreClaims(): void
    {
        $jwt = Token::mint('k', 42, ['room:1'], 60, ['join' => ['room:*']], 1000);
        self::assertSame(['alg' => 'HS256', 'typ' => 'JWT'], self::part($jwt, 0));
        self::assertSame(['sub' => '42', 'groups' => ['room:1'], 'exp' => 1060, 'join' => ['room:*']], self::part($jwt, 1));
        self::assertMatchesRegularExpression('/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/', $jwt);
        self::assertEqualsWithDelta(time() + 3600, self::part(Token::mint('k', 'ann'), 1)['exp'], 5);
    }

    public function testRefusesWhatWouldMakeABadToken(): void
    {
        foreach ([
            fn () => Token::mint('', 'ann'),
            fn () => Token::mint('k', 'ann', ttl: 0),
            fn () => Token::mint('k', 'ann', claims: ['sub' => 'bob']),
            fn () => Token::mint('k', 'ann', claims: ['exp' => 1]),
            fn () => Token::mint('k', 'ann', [1]),
        ] as $i => $mint) {
            try {
                $mint();
                self::fail("case {$i} minted a token");
            } catch (InvalidArgumentException $e) {
                self::assertNotSame('', $e->getMessage());
            }
        }
    }
}
