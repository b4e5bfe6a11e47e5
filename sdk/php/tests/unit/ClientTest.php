<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Client;
use Herald\Exception\ApiException;
use Herald\Exception\BadRequestException;
use Herald\Exception\InvalidArgumentException;
use Herald\Exception\NatsException;
use Herald\Exception\PayloadTooLargeException;
use Herald\Exception\UnauthorizedException;
use Herald\Exception\UnavailableException;
use Herald\Nats\Publisher;
use Herald\Target;
use PHPUnit\Framework\TestCase;

/**
 * What the clients refuse before sending anything, and how Herald's error
 * answers become exceptions. Calls against a real Herald are in the
 * integration tests (tests/tests/php.rs).
 */
final class ClientTest extends TestCase
{
    public function testErrorAnswersBecomeTypedExceptionsWithStatusAndMessage(): void
    {
        $cases = [
            [400, '{"error":"\"to\" names nobody"}', BadRequestException::class, '"to" names nobody'],
            [401, '{"error":"wrong API key"}', UnauthorizedException::class, 'wrong API key'],
            [413, '{"error":"request body too large"}', PayloadTooLargeException::class, 'request body too large'],
            [503, '{"error":"NATS is unreachable"}', UnavailableException::class, 'NATS is unreachable'],
            [502, "<html>Bad Gateway</html>\n", ApiException::class, '<html>Bad Gateway</html>'],
        ];
        foreach ($cases as [$status, $body, $class, $error]) {
            $e = ApiException::fromAnswer($status, $body);
            self::assertSame($class, $e::class);
            self::assertSame([$status, $error, $body], [$e->getStatus(), $e->getError(), $e->getBody()]);
            self::assertSame("Herald API answered HTTP {$status}: {$error}", $e->getMessage());
        }
    }

    public function testRefusesBadCallsBeforeSending(): void
    {
        // Port 1: nothing listens, and nothing is ever sent there.
        $client = new Client('http://127.0.0.1:1', 'key', ['transport' => 'streams']);
        $nats = new Publisher('nats://127.0.0.1:1');
        foreach ([
            'no URL scheme' => fn () => new Client('127.0.0.1:8081', 'key'),
            'bad transport' => fn () => new Client('http://x', 'key', ['transport' => 'carrier pigeon']),
            'no timeout' => fn () => new Client('http://x', 'key', ['timeout' => 0]),
            'empty target' => fn () => $client->publish(Target::of(), 'news'),
            'empty action' => fn () => $client->publishToAll(''),
            'long action' => fn () => $client->publishToAll(str_repeat('é', 129)),
            'not UTF-8' => fn () => $client->publishToUsers(['ann'], "\xff"),
            'no JSON' => fn () => $client->publishToUsers(['ann'], 'news', ['bad' => "\xff"]),
            'nobody to join' => fn () => $client->joinGroup('g'),
            'nobody to disconnect' => fn () => $client->disconnect(),
            'not a NATS URL' => fn () => new Publisher('http://127.0.0.1:4222'),
            'no NATS URL' => fn () => new Publisher(' , '),
            'bad conn' => fn () => $nats->publishToConns(['e.*'], 'news'),
            'bad exclude_conn' => fn () => $nats->publishToAll('news', null, 'nope'),
            'bad subject' => fn () => $nats->publishRaw('a.>', '{}'),
            'bad header' => fn () => $nats->publishRaw('a', '{}', ["X\r\nY" => 'v']),
        ] as $name => $call) {
            try {
                $call();
                self::fail("{$name}: taken");
            } catch (InvalidArgumentException $e) {
                self::assertNotSame('', $e->getMessage(), $name);
            }
        }
        self::assertSame(128, strlen(str_repeat('a', 128)));
    }

    public function testNatsThatIsNotThereIsAClearException(): void
    {
        $nats = new Publisher('nats://127.0.0.1:1, nats://127.0.0.1:2', ['timeout' => 0.5]);
        try {
            $nats->publishToUsers(['ann'], 'news');
            self::fail('published to no server');
        } catch (NatsException $e) {
            self::assertStringStartsWith('cannot connect to NATS: nats://127.0.0.1:1: ', $e->getMessage());
            self::assertStringContainsString('; nats://127.0.0.1:2: ', $e->getMessage());
            self::assertStringContainsString('refused', $e->getMessage());
        }
    }
}
