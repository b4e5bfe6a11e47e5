<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\InvalidArgumentException;
use Herald\Handler\ActionError;
use Herald\Handler\Handler;
use Herald\Handler\Request;
use Herald\Handler\Response;
use Herald\Http\HttpResponse;
use Herald\Target;
use Herald\Webhook;
use PHPUnit\Framework\TestCase;

final class HandlerTest extends TestCase
{
    private const SECRET = 'herald-tests-webhook-secret';
    private const NOW = 1767225600;

    private static function request(string $action, array $more = []): string
    {
        return json_encode($more + ['action' => $action, 'details' => ['room' => 'lobby'], 'id' => 7, 'conn' => 'e.1',
            'user' => 'ann', 'groups' => ['g'], 'claims' => ['plan' => 'pro']]);
    }

    /** Answers `$body` signed as Herald signs it, at NOW. */
    private static function answer(Handler $handler, string $body, ?string $traceparent = null): HttpResponse
    {
        $signature = (new Webhook(self::SECRET))->sign((string) self::NOW, $body);
        return $handler->handle($body, (string) self::NOW, $signature, $traceparent, self::NOW);
    }

    private static function json(HttpResponse $response): array
    {
        self::assertSame(200, $response->status, $response->body);
        return json_decode($response->body, true, 512, JSON_THROW_ON_ERROR);
    }

    public function testDispatchesToTheFirstMatchingPatternWithATypedRequest(): void
    {
        $seen = null;
        $handler = (new Handler(self::SECRET))
            ->on('chat/send', function (Request $request) use (&$seen) {
                $seen = $request;
                return Response::details(['sent' => true])->join('room:lobby');
            })
            ->on('chat/*', fn () => 'any chat')
            ->on('*', fn () => null);
        $answer = self::answer($handler, self::request('chat/send'), '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
        self::assertSame('{"details":{"sent":true},"effects":[{"join":"room:lobby"}]}', $answer->body);
        self::assertSame(['chat/send', ['room' => 'lobby'], 7, 'e.1', 'ann', ['g'], ['plan' => 'pro']],
            [$seen->action, $seen->details, $seen->id, $seen->conn, $seen->user, $seen->groups, $seen->claims]);
        self::assertSame('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', $seen->traceparent);
        self::assertSame(['details' => 'any chat'], self::json(self::answer($handler, self::request('chat/leave'))));
        self::assertSame('{}', self::answer($handler, self::request('other'))->body);
    }

    public function testErrorsBecomeErrorReplies(): void
    {
        $handler = (new Handler(self::SECRET))
            ->on('forbidden', fn () => throw new ActionError(403, 'not a member'))
            ->on('broken', fn () => throw new \RuntimeException('database down'));
        self::assertSame(['error' => ['code' => 403, 'message' => 'not a member']], self::json(self::answer($handler, self::request('forbidden'))));
        self::assertSame(['error' => ['code' => 500, 'message' => 'the handler failed']], self::json(self::answer($handler, self::request('broken'))));
        self::assertSame(['error' => ['code' => 404, 'message' => 'no handler for action "nope"']], self::json(self::answer($handler, self::request('nope'))));
    }

    public function testRefusesUnsignedTamperedStaleAndMalformedRequests(): void
    {
        $called = false;
        $handler = (new Handler(self::SECRET, 60))->on('*', function () use (&$called) {
            $called = true;
        });
        $body = self::request('chat/send');
        $signature = (new Webhook(self::SECRET))->sign((string) self::NOW, $body);
        $cases = [
            'unsigned' => [$body, null, null, self::NOW, 401, 'missing Herald-Timestamp header'],
            'tampered' => [str_replace('lobby', 'admin', $body), (string) self::NOW, $signature, self::NOW, 401, 'wrong signature'],
            'stale' => [$body, (string) self::NOW, $signature, self::NOW + 61, 401, 'stale request'],
            'wrong secret' => [$body, (string) self::NOW, (new Webhook('x'))->sign((string) self::NOW, $body), self::NOW, 401, 'wrong signature'],
        ];
        foreach ($cases as $name => [$sent, $timestamp, $sig, $now, $status, $why]) {
            $answer = $handler->handle($sent, $timestamp, $sig, null, $now);
            self::assertSame($status, $answer->status, $name);
            self::assertStringContainsString($why, json_decode($answer->body, true)['error'], $name);
        }
        $malformed = self::answer($handler, '{"action":1}');
        self::assertSame([400, ['error' => 'handler request field "action" must be a string']],
            [$malformed->status, json_decode($malformed->body, true)]);
        self::assertSame(400, self::answer($handler, 'not json')->status);
        self::assertSame(400, self::answer($handler, '[1]')->status);
        self::assertFalse($called);
    }

    public function testConnectRequestsCarryHeadersAndCookies(): void
    {
        $request = Request::fromJson(self::request('$connect', [
            'user' => null, 'claims' => [], 'headers' => ['cookie' => 'PHPSESSID=abc', 'origin' => 'http://x'],
            'cookies' => ['PHPSESSID' => 'abc'],
        ]));
        self::assertTrue($request->isConnect());
        self::assertNull($request->user);
        self::assertSame('http://x', $request->header('Origin'));
        self::assertSame('abc', $request->cookie('PHPSESSID'));
        self::assertNull($request->cookie('other'));
        $this->expectException(InvalidArgumentException::class);
        Request::fromJson(self::request('$connect', ['cookies' => ['a' => 1]]));
    }

    public function testConnectFromSessionRefusesWithoutACookie(): void
    {
        $handler = (new Handler(self::SECRET))->onConnectFromSession(fn (array $session) => Response::connect($session['user']));
        $answer = self::json(self::answer($handler, self::request('$connect', ['user' => null, 'cookies' => []])));
        self::assertSame(['error' => ['code' => 401, 'message' => 'no session']], $answer);
    }

    public function testResponsesAreHeraldsJson(): void
    {
        self::assertSame('{"details":null}', Response::details(null)->toJson());
        self::assertSame('{"details":[]}', Response::details([])->toJson());
        self::assertSame('{}', Response::empty()->toJson());
        self::assertSame('{"noreply":true,"effects":[{"leave":"g"}]}', Response::noReply()->leave('g')->toJson());
        self::assertSame('{"error":{"code":4001,"message":"x"}}', Response::error(4001, 'x')->toJson());
        self::assertSame('{"user":"42","groups":["a"],"claims":{}}', Response::connect(42, ['a'])->toJson());
        self::assertSame('{"user":null,"groups":[],"claims":{"k":"v"}}', Response::connect(null, [], ['k' => 'v'])->toJson());
        self::assertSame('{"error":{"code":403,"message":"no"}}', Response::refuse(403, 'no')->toJson());
        self::assertSame(
            '{"details":1,"effects":[{"disconnect":{"code":4002,"reason":"bye"}},'
            . '{"publish":{"to":{"groups":["room"]},"action":"chat/message","details":{"text":"é/"}}}]}',
            Response::details(1)->disconnect(4002, 'bye')->publish(Target::groups('room'), 'chat/message', ['text' => 'é/'])->toJson(),
        );
        $this->expectException(InvalidArgumentException::class);
        Response::error(5000, 'out of range');
    }
}
