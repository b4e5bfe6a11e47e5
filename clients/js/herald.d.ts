/**
 * Herald client: one WebSocket session to a Herald edge, with requests and
 * replies, groups, events, and reconnection. See README.md.
 */

/** Codes of the errors the client raises itself (`HeraldError.local` is true). */
export declare const ClientErrorCode: Readonly<{
  /** No reply came within the request's timeout. */
  TIMEOUT: 504;
  /** The connection was lost, or the client closed, before the reply came. */
  DISCONNECTED: 499;
  /** Not connected and the outgoing queue was full: the frame was not sent. */
  QUEUE_FULL: 429;
}>;

/**
 * An error reply from Herald or a handler (`<action>:error`), or a failure of
 * the client itself (`local` is true, `code` one of {@link ClientErrorCode}).
 */
export declare class HeraldError extends Error {
  constructor(code: number, message: string, info?: { action?: string; local?: boolean });
  readonly name: 'HeraldError';
  /** HTTP-like: 400 bad input, 401/403 auth, 404 no route, 429 rate, 503 no handler, 504 timeout, ... */
  code: number;
  /** The action of the request that failed. */
  action: string | undefined;
  /** True when the client raised it (timeout, disconnect, full queue), false for a server reply. */
  local: boolean;
}

/** How the client authenticates: a fixed token, a source of fresh tokens, or neither (anonymous). */
export type HeraldAuth =
  | { token: string; getToken?: undefined }
  | { getToken: () => Promise<string> | string; token?: undefined }
  | { token?: undefined; getToken?: undefined };

/** What the client needs of a WebSocket: the browser's, or e.g. the `ws` package's in Node. */
export interface WebSocketLike {
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface HeraldOptions {
  /** The WebSocket class; default `globalThis.WebSocket`. In Node, e.g. `import WebSocket from 'ws'`. */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Default timeout of `request`, in milliseconds. Default 10000. */
  requestTimeoutMs?: number;
  /** How long a connection may take to reach `$connected`, in milliseconds. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * How many frames wait while not connected. When full, new frames are
   * refused (`send` returns false, `request` rejects with QUEUE_FULL). Default 100.
   */
  queueLimit?: number;
  /**
   * Reconnect delays, with full jitter: the first attempt waits a random
   * time in `[0, firstMs]`, attempt n > 1 in `[0, min(capMs, baseMs * 2^(n-2))]`;
   * after a 1008 close, between `capMs / 2` and `capMs`. Defaults 100, 500
   * and 30000.
   */
  backoff?: { firstMs?: number; baseMs?: number; capMs?: number };
  /**
   * Whether to reconnect after the server closed with `code`. Default: yes,
   * except after 1000 and 4000-4999. After 4001 the client reconnects only
   * with `getToken`, whatever this says.
   */
  shouldReconnect?: (code: number, reason: string) => boolean;
}

/** Details of `$connected`: who the server says the connection is. */
export interface ConnectedDetails {
  conn: string;
  user: string | null;
  groups: string[];
}

/** Details of the client's lifecycle events and system frames, by name. */
export interface SystemEvents {
  $connected: ConnectedDetails;
  $disconnected: { code: number; reason: string; willReconnect: boolean };
  $reconnecting: { attempt: number; delayMs: number };
  $reauth: { user: string | null; exp: number };
  $error: { code: number; message: string };
  '$join:error': { group: string; code: number; message: string };
  '$auth:error': { code: number; message: string };
  /**
   * Recovery is on and the frames missed on the connection's subjects (or, with `group`, on a group
   * re-joined after a reconnect), if any, were delivered (`recovered`), or could not be.
   */
  $recovered: { recovered: boolean; offsets: Record<string, string>; group?: string };
}

/** A whole server frame. */
export interface ServerFrame<D = unknown> {
  action: string;
  details: D;
  id?: string | number;
}

export type Listener<D = any> = (details: D, frame: ServerFrame<D>) => void;

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A Herald session that reconnects by itself. */
export declare class Herald {
  /**
   * Creates the client and starts connecting at once.
   *
   * @param url The edge's WebSocket endpoint, e.g. `wss://host/ws`; `http(s)` becomes `ws(s)`, and in
   *   browsers a relative URL is resolved against the page.
   */
  constructor(url: string | URL, auth?: HeraldAuth, options?: HeraldOptions);

  /** `connecting` (first connection), `connected`, `reconnecting`, or `closed` (for good). */
  readonly state: ConnectionState;
  /** The current connection's `$connected` details, or null while not connected. */
  readonly session: ConnectedDetails | null;

  /** Calls `fn` for every event named `action`. Returns a function that removes it. */
  on<A extends keyof SystemEvents>(action: A, fn: Listener<SystemEvents[A]>): () => void;
  on<D = any>(action: string, fn: Listener<D>): () => void;
  /** Like `on`, for the next event only. */
  once<A extends keyof SystemEvents>(action: A, fn: Listener<SystemEvents[A]>): () => void;
  once<D = any>(action: string, fn: Listener<D>): () => void;
  /** Removes every registration of `fn` for `action`. */
  off(action: string, fn: Listener): void;

  /**
   * Sends a frame without waiting for a reply; queued while not connected.
   * Returns false if it was dropped (closed, or queue full).
   */
  send(action: string, details?: unknown): boolean;
  /**
   * Sends a frame with a fresh id and resolves with the reply's details.
   * Rejects with a {@link HeraldError}.
   */
  request<R = any>(action: string, details?: unknown, options?: { timeout?: number }): Promise<R>;
  /**
   * Joins a group (`$join`); joined again after every reconnect, from where the client was in it
   * when the group keeps a history (then the reply has `recovered` and `offsets`).
   */
  join(
    group: string,
    options?: { timeout?: number },
  ): Promise<{ group: string; recovered?: boolean; offsets?: Record<string, string> }>;
  /** Leaves a group (`$leave`); no longer joined again after reconnects. */
  leave(group: string, options?: { timeout?: number }): Promise<{ group: string }>;
  /** Closes for good: no reconnect; queued frames dropped, pending requests rejected. */
  close(): void;
}
