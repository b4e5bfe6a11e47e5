<?php

/**
 * Herald's JavaScript client (clients/js/herald.js), served by the app, so
 * the page works against any edge (only `herald dev` serves /sdk/herald.js).
 */

declare(strict_types=1);

header('Content-Type: text/javascript; charset=utf-8');
header('Cache-Control: no-cache');
readfile(__DIR__ . '/../../../clients/js/herald.js');
