<?php

declare(strict_types=1);

namespace Herald;

use Herald\Exception\InvalidArgumentException;

/**
 * The W3C trace context (`traceparent`, `tracestate`) a handler request
 * came with. While a {@see Handler\Handler} runs an action's function, the
 * request's context is the current one, and {@see Client} and
 * {@see Nats\Publisher} send it with what they send (as HTTP headers, as
 * NATS headers), so the trace of the client's action goes on through what
 * the handler publishes. Outside a handler there is none and nothing is
 * added.
 */
final class TraceContext
{
    private static ?TraceContext $current = null;

    /**
     * @throws InvalidArgumentException when `$traceparent` is not a W3C traceparent
     */
    public function __construct(
        public readonly string $traceparent,
        public readonly ?string $tracestate = null,
    ) {
        if (!preg_match('/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/D', $traceparent)) {
            throw new InvalidArgumentException("\"{$traceparent}\" is not a W3C traceparent");
        }
        if ($tracestate !== null && preg_match('/[\r\n]/', $tracestate)) {
            throw new InvalidArgumentException('a tracestate is one line');
        }
    }

    /** The context these headers carry; null when absent or malformed (a trace is never worth an error). */
    public static function tryFrom(?string $traceparent, ?string $tracestate = null): ?self
    {
        try {
            return $traceparent === null ? null : new self($traceparent, $tracestate);
        } catch (InvalidArgumentException) {
            return null;
        }
    }

    /** The context of the action being handled, if any. */
    public static function current(): ?self
    {
        return self::$current;
    }

    /** Runs `$work` with `$context` as the current one, and restores the one before. */
    public static function within(?self $context, callable $work): mixed
    {
        $before = self::$current;
        self::$current = $context;
        try {
            return $work();
        } finally {
            self::$current = $before;
        }
    }

    /**
     * The current context's headers; none outside a handler.
     *
     * @return array<string, string>
     */
    public static function currentHeaders(): array
    {
        $context = self::$current;
        if ($context === null) {
            return [];
        }
        $headers = ['traceparent' => $context->traceparent];
        if ($context->tracestate !== null && $context->tracestate !== '') {
            $headers['tracestate'] = $context->tracestate;
        }
        return $headers;
    }
}
