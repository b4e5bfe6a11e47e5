<?php

declare(strict_types=1);

namespace Herald\Tests;

use Herald\Exception\InvalidArgumentException;
use Herald\Handler\Handler;
use Herald\Handler\Request;
use Herald\TraceContext;
use Herald\Webhook;
use PHPUnit\Framework\TestCase;

final class TraceContextTest extends TestCase
{
    private const SECRET = 'herald-tests-webhook-secret';
    private const NOW = 1767225600;
    private const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

    public function testAHandlersFunctionRunsWithinItsRequestsTraceContextAndOnlyThen(): void
    {
        $seen = [];
        $handler = (new Handler(self::SECRET))->on('chat/send', function (Request $request) use (&$seen) {
            $seen[] = TraceContext::currentHeaders();
            return null;
        });
        $body = json_encode(['action' => 'chat/send', 'conn' => 'e.1', 'user' => 'ann', 'groups' => [], 'claims' => []]);
        $signature = (new Webhook(self::SECRET))->sign((string) self::NOW, $body);
        $handler->handle($body, (string) self::NOW, $signature, self::TRACEPARENT, self::NOW, 'vendor=x');
        $handler->handle($body, (string) self::NOW, $signature, 'not-a-traceparent', self::NOW);
        $handler->handle($body, (string) self::NOW, $signature, null, self::NOW);
        self::assertSame([['traceparent' => self::TRACEPARENT, 'tracestate' => 'vendor=x'], [], []], $seen);
        self::assertSame([], TraceContext::currentHeaders(), 'none once the function returned');
    }

    public function testTheContextBeforeIsRestoredEvenWhenTheWorkThrows(): void
    {
        $outer = new TraceContext(self::TRACEPARENT);
        TraceContext::within($outer, function () use ($outer): void {
            try {
                TraceContext::within(null, fn () => throw new \RuntimeException('failed'));
            } catch (\RuntimeException) {
            }
            self::assertSame($outer, TraceContext::current());
        });
        self::assertNull(TraceContext::current());
    }

    public function testOnlyW3cTraceparentsAreContexts(): void
    {
        self::assertNull(TraceContext::tryFrom('00-xyz-b7ad6b7169203331-01'));
        self::assertNull(TraceContext::tryFrom(null));
        self::assertSame(self::TRACEPARENT, TraceContext::tryFrom(self::TRACEPARENT)?->traceparent);
        $this->expectException(InvalidArgumentException::class);
        new TraceContext(self::TRACEPARENT, "a\r\nInjected: header");
    }
}
