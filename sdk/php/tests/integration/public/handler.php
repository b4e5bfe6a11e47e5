<?php

/**
 * The HTTP handler the integration tests route actions to (served by
 * `php -S`): every kind of answer the SDK's handler helper gives.
 * HERALD_WEBHOOK_SECRET is the router's; HANDLER_LOG, when set, is a file
 * that gets one JSON line per `$disconnect` notice.
 */

declare(strict_types=1);

require __DIR__ . '/../../../autoload.php';

use Herald\Handler\ActionError;
use Herald\Handler\Handler;
use Herald\Handler\Request;
use Herald\Handler\Response;
use Herald\Target;

$handler = new Handler((string) getenv('HERALD_WEBHOOK_SECRET'));

// Who connects, from a cookie and a header of the upgrade.
$handler->on('$connect', function (Request $request) {
    if ($request->cookie('banned') !== null) {
        return Response::refuse(403, 'banned');
    }
    $user = $request->cookie('test-user') ?? throw new ActionError(401, 'no test-user cookie');
    return Response::connect($user, ['from-cookie'], ['agent' => $request->header('X-Test-Agent')]);
});

// Joins the token did not allow: only "open:" groups.
$handler->on('$join', function (Request $request) {
    $group = $request->details['group'] ?? '';
    return str_starts_with($group, 'open:') ? Response::empty() : Response::refuse(403, "{$group} is closed");
});

$handler->on('$disconnect', function (Request $request) {
    $log = getenv('HANDLER_LOG');
    if ($log !== false && $log !== '') {
        file_put_contents($log, json_encode(['conn' => $request->conn, 'user' => $request->user]) . "\n", FILE_APPEND | LOCK_EX);
    }
    return Response::noReply();
});

// The request as the handler saw it.
$handler->on('echo/*', fn (Request $request) => [
    'action' => $request->action, 'details' => $request->details, 'id' => $request->id, 'conn' => $request->conn,
    'user' => $request->user, 'groups' => $request->groups, 'claims' => (object) $request->claims,
    'traceparent' => $request->traceparent,
]);

$handler->on('fx/join', fn (Request $request) => Response::details(['joined' => $request->details['group']])
    ->join($request->details['group']));
$handler->on('fx/leave', fn (Request $request) => Response::details(null)->leave($request->details['group']));
$handler->on('fx/publish', fn (Request $request) => Response::noReply()
    ->publish(Target::of(...$request->details['to']), 'fx/published', ['from' => $request->user]));
$handler->on('fx/disconnect', fn () => Response::details('bye')->disconnect(4002, 'asked to go'));
$handler->on('fx/error', fn () => throw new ActionError(409, 'conflict'));
$handler->on('fx/crash', fn () => throw new RuntimeException('a bug in the app'));

$handler->run();
