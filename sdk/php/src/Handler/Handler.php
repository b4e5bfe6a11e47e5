<?php

declare(strict_types=1);

namespace Herald\Handler;

use Herald\Exception\InvalidArgumentException;
use Herald\Exception\SignatureException;
use Herald\Http\HttpResponse;
use Herald\Json;
use Herald\TraceContext;
use Herald\Webhook;

/**
 * An HTTP handler endpoint for Herald's router: checks that each request
 * comes from Herald (its `Herald-Signature`, within the timestamp
 * tolerance), reads it into a {@see Request}, calls the function registered
 * for its action, and answers with the {@see Response} it returns.
 *
 * ```php
 * $handler = new Herald\Handler\Handler(getenv('HERALD_WEBHOOK_SECRET'));
 * $handler->on('chat/send', function (Request $request) {
 *     return Response::details(['sent' => true])
 *         ->publish(Target::groups($request->details['room']), 'chat/message', $request->details);
 * });
 * $handler->run();
 * ```
 *
 * A function may return a {@see Response}, null (a reply without details)
 * or any other value (the reply's details), or throw an {@see ActionError}
 * (an error reply with its code). Any other exception is logged with
 * `error_log` and the client gets a 500 error reply that tells nothing of
 * it. A request that is not signed right is answered HTTP 401 and reaches
 * no function; the router then gives the client a 502.
 */
final class Handler
{
    private readonly Webhook $webhook;
    /** @var list<array{string, callable}> patterns (exact, or a prefix ending in `*`) and their functions */
    private array $routes = [];

    /**
     * @param string $webhookSecret `HERALD_WEBHOOK_SECRET`, as the router has it
     * @param int $tolerance seconds a request's timestamp may be from now
     */
    public function __construct(
        #[\SensitiveParameter] string $webhookSecret,
        int $tolerance = Webhook::DEFAULT_TOLERANCE,
    ) {
        $this->webhook = new Webhook($webhookSecret, $tolerance);
    }

    /**
     * Calls `$handler(Request $request)` for actions matching `$pattern`: an
     * action name (`chat/send`, `$connect`, `$join`, `$disconnect`) or a
     * prefix ending in `*` (`chat/*`). The first registered match wins.
     */
    public function on(string $pattern, callable $handler): self
    {
        $this->routes[] = [$pattern, $handler];
        return $this;
    }

    /**
     * Answers `$connect` from the app's own PHP session: the session the
     * upgrade's session cookie (`PHPSESSID`, or `$sessionName`) names is
     * read (not locked beyond the read, not changed) and handed to
     * `$map(array $session, Request $request)`, which returns
     * {@see Response::connect()} for a user it knows, or null to refuse
     * with 401. No cookie, or no such session, is refused with 401 without
     * calling it.
     */
    public function onConnectFromSession(callable $map, ?string $sessionName = null): self
    {
        return $this->on('$connect', static function (Request $request) use ($map, $sessionName): Response {
            $session = PhpSession::read($request, $sessionName);
            if ($session === null) {
                return Response::refuse(401, 'no session');
            }
            return $map($session, $request) ?? Response::refuse(401, 'not logged in');
        });
    }

    /**
     * Serves the current PHP request: reads the body and headers, and writes
     * the status and the JSON answer.
     */
    public function run(): void
    {
        if (($_SERVER['REQUEST_METHOD'] ?? 'POST') !== 'POST') {
            $answer = new HttpResponse(405, Json::encode(['error' => 'Herald handlers take POST']));
        } else {
            $answer = $this->handle(
                (string) file_get_contents('php://input'),
                $_SERVER['HTTP_HERALD_TIMESTAMP'] ?? null,
                $_SERVER['HTTP_HERALD_SIGNATURE'] ?? null,
                $_SERVER['HTTP_TRACEPARENT'] ?? null,
                tracestate: $_SERVER['HTTP_TRACESTATE'] ?? null,
            );
        }
        http_response_code($answer->status);
        header('Content-Type: application/json');
        echo $answer->body;
    }

    /**
     * Answers one request from Herald: its raw body and its headers in, the
     * HTTP status and JSON body out.
     *
     * @param int|null $now the current Unix time; `time()` when null
     */
    public function handle(
        string $body,
        ?string $timestamp,
        ?string $signature,
        ?string $traceparent = null,
        ?int $now = null,
        ?string $tracestate = null,
    ): HttpResponse {
        try {
            $this->webhook->verify($timestamp, $body, $signature, $now);
        } catch (SignatureException $e) {
            error_log('herald: refused a handler request: ' . $e->getMessage());
            return new HttpResponse(401, Json::encode(['error' => $e->getMessage()]));
        }
        try {
            $request = Request::fromJson($body, $traceparent, $tracestate);
        } catch (InvalidArgumentException $e) {
            return new HttpResponse(400, Json::encode(['error' => $e->getMessage()]));
        }
        return new HttpResponse(200, $this->dispatch($request)->toJson());
    }

    /**
     * The answer of the function registered for the request's action. While
     * it runs, the request's trace context is the current one
     * ({@see TraceContext}): what it publishes continues the action's trace.
     */
    public function dispatch(Request $request): Response
    {
        $handler = $this->handlerFor($request->action);
        if ($handler === null) {
            return Response::error(404, "no handler for action \"{$request->action}\"");
        }
        try {
            $trace = TraceContext::tryFrom($request->traceparent, $request->tracestate);
            $answer = TraceContext::within($trace, static fn () => $handler($request));
        } catch (ActionError $e) {
            return Response::error($e->status, $e->getMessage());
        } catch (\Throwable $e) {
            error_log("herald: the handler of \"{$request->action}\" failed: {$e}");
            return Response::error(500, 'the handler failed');
        }
        return match (true) {
            $answer instanceof Response => $answer,
            $answer === null => Response::empty(),
            default => Response::details($answer),
        };
    }

    private function handlerFor(string $action): ?callable
    {
        foreach ($this->routes as [$pattern, $handler]) {
            $matches = str_ends_with($pattern, '*')
                ? str_starts_with($action, substr($pattern, 0, -1))
                : $pattern === $action;
            if ($matches) {
                return $handler;
            }
        }
        return null;
    }
}
