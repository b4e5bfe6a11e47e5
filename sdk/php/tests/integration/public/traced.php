<?php

/**
 * An HTTP handler that publishes while it answers, through the HTTP API
 * and over NATS (tests/tests/traces.rs): both carry the action's trace
 * context on. HERALD_WEBHOOK_SECRET, HERALD_API_URL, HERALD_API_KEY and
 * NATS_URL are the test's.
 */

declare(strict_types=1);

require __DIR__ . '/../../../autoload.php';

use Herald\Client;
use Herald\Handler\Handler;
use Herald\Handler\Request;
use Herald\Nats\Publisher;

$handler = new Handler((string) getenv('HERALD_WEBHOOK_SECRET'));
$handler->on('traced/publish', function (Request $request) {
    (new Client((string) getenv('HERALD_API_URL'), (string) getenv('HERALD_API_KEY')))
        ->publishToGroups(['traced'], 'via-api');
    $nats = new Publisher((string) getenv('NATS_URL'));
    $nats->publishToGroups(['traced'], 'via-nats');
    $nats->flush();
    return ['traceparent' => $request->traceparent];
});
$handler->run();
