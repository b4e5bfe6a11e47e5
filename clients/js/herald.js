/**
 * Herald client: one WebSocket session to a Herald edge, with requests and
 * replies, groups, events, and reconnection.
 *
 * No dependencies. Runs in browsers (the global `WebSocket`) and in Node
 * (pass a WebSocket class, e.g. the `ws` package's, as `options.WebSocket`).
 *
 * The wire protocol is Herald's client protocol: text frames of
 * `{"action", "details", "id"?}`; a reply carries the request's action and
 * id, an error reply `<action>:error` with `{"code", "message"}`.
 *
 * @module @herald/client
 */

/**
 * Codes of the errors the client raises itself (`HeraldError#local` is
 * true). They follow HTTP, like the server's codes.
 */
export const ClientErrorCode = Object.freeze({
  /** No reply came within the request's timeout. */
  TIMEOUT: 504,
  /** The connection was lost, or the client closed, before the reply came. */
  DISCONNECTED: 499,
  /** Not connected and the outgoing queue was full: the frame was not sent. */
  QUEUE_FULL: 429,
});

/** Close codes the client acts on (Herald's protocol, section 5.10). */
const Close = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  POLICY: 1008,
  AUTH_EXPIRED: 4001,
});

/**
 * An error reply from Herald or a handler (`<action>:error`), or a failure of
 * the client itself (`local` is true, `code` one of {@link ClientErrorCode}).
 */
export class HeraldError extends Error {
  /**
   * @param {number} code HTTP-like code: 400 bad input, 403 not allowed, 404 no route, 504 timeout, ...
   * @param {string} message What went wrong, readable by people.
   * @param {{ action?: string, local?: boolean }} [info] The action that failed; whether the client raised it.
   */
  constructor(code, message, { action, local = false } = {}) {
    super(message);
    this.name = 'HeraldError';
    /** @type {number} */
    this.code = code;
    /** @type {string | undefined} */
    this.action = action;
    /** @type {boolean} */
    this.local = local;
  }
}

/** Default options; see {@link Herald} for what each means. */
const DEFAULTS = Object.freeze({
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  queueLimit: 100,
  backoff: Object.freeze({ firstMs: 100, baseMs: 500, capMs: 30_000 }),
});

/**
 * Whether to reconnect after the server closed with `code`, unless the
 * application says otherwise: not after a normal closure (1000) or a
 * backend's own code (4000-4999), which are the application's decisions;
 * always after anything else (restart, going away, slow consumer, policy,
 * network loss). 4001 is handled before this is asked.
 *
 * @param {number} code
 * @returns {boolean}
 */
function reconnectsByDefault(code) {
  return code !== Close.NORMAL && !(code >= 4000 && code <= 4999);
}

/**
 * A Herald session that reconnects by itself.
 *
 * Events, all through {@link Herald#on}:
 * - any server frame that is not a reply to a {@link Herald#request}, by its
 *   action, with its details (e.g. `chat/message`, `$reauth`, `$error`, or the
 *   reply to a {@link Herald#send});
 * - `$connected` `{conn, user, groups}`: the server's first frame, after every
 *   connect and reconnect;
 * - `$disconnected` `{code, reason, willReconnect}`: a connection ended, or
 *   the client stopped for good (then `willReconnect` is false);
 * - `$reconnecting` `{attempt, delayMs}`: the next attempt starts in `delayMs`;
 * - `$join:error` `{group, code, message}`: a group could not be re-joined
 *   after a reconnect (the client forgets it);
 * - `$auth:error` `{code, message}`: refreshing the token after `$reauth`
 *   failed (the server will close with 4001 after its grace period);
 * - `$recovered` `{recovered, offsets, group?}`: when the server keeps a
 *   history (missed-message recovery), after every connect, and after every
 *   group joined with {@link Herald#join} is re-joined (with `group`):
 *   `recovered` is true when every frame missed while disconnected was
 *   delivered (before this event, exactly once, in order); false on a first
 *   connect or when the server could not guarantee it: reload the
 *   application's state then.
 *
 * With recovery on, the client keeps the last position (`offset`) of every
 * subject it received and sends them when it reconnects (`?resume=`); it
 * needs nothing from the application.
 *
 * @example
 * const herald = new Herald('wss://example.com/ws', { getToken: fetchToken });
 * herald.on('chat/message', ({ user, text }) => show(user, text));
 * await herald.request('chat/join', { room: 'lobby' });
 */
export class Herald {
  /** @type {URL} */
  #url;
  /** @type {string | undefined} */
  #token;
  /** @type {(() => Promise<string> | string) | undefined} */
  #getToken;
  /** @type {typeof WebSocket} */
  #WebSocket;
  #requestTimeoutMs;
  #connectTimeoutMs;
  #queueLimit;
  #backoff;
  /** @type {((code: number, reason: string) => boolean) | undefined} */
  #shouldReconnect;

  /** @type {'connecting' | 'connected' | 'reconnecting' | 'closed'} */
  #state = 'connecting';
  /** @type {WebSocket | null} The current socket; events from any other are stale. */
  #socket = null;
  /** @type {object | null} Details of the current connection's `$connected`. */
  #session = null;
  /** @type {Map<string, Array<{ fn: Listener, once: boolean }>>} */
  #listeners = new Map();
  /** @type {Map<number, PendingRequest>} Requests sent and not yet answered, by id. */
  #pending = new Map();
  /** @type {Array<{ id?: number, text: string, request?: PendingRequest }>} Frames waiting for a connection. */
  #queue = [];
  /** @type {Set<string>} Groups joined with {@link Herald#join}, re-joined after a reconnect. */
  #groups = new Set();
  /** @type {Map<string, string>} The last position per subject (recovery), sent on reconnect. */
  #positions = new Map();
  #nextId = 1;
  /** Reconnect attempts since the last `$connected`. */
  #attempt = 0;
  /** The last close was 4001: a connection now needs a fresh token. */
  #authExpired = false;
  /** The last close was 1008: the next attempt waits long. */
  #policyClose = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #connectTimer;

  /**
   * Creates the client and starts connecting at once.
   *
   * @param {string | URL} url The edge's WebSocket endpoint, e.g. `wss://host/ws`.
   *   `http(s)` URLs are turned into `ws(s)`; in browsers a relative URL
   *   (`/ws`) is resolved against the page.
   * @param {{ token?: string, getToken?: () => Promise<string> | string }} [auth]
   *   A fixed token, or a function that returns a fresh one: called before
   *   every connect and when the server sends `$reauth`. Neither: anonymous.
   * @param {object} [options]
   * @param {typeof WebSocket} [options.WebSocket] The WebSocket class; default `globalThis.WebSocket`.
   * @param {number} [options.requestTimeoutMs=10000] Default timeout of {@link Herald#request}.
   * @param {number} [options.connectTimeoutMs=10000] How long a connection may take to reach `$connected`.
   * @param {number} [options.queueLimit=100] How many frames wait while not connected. When the
   *   queue is full, new frames are refused (`send` returns false, `request` rejects with
   *   {@link ClientErrorCode.QUEUE_FULL}); frames already queued are kept, in order.
   * @param {{ firstMs?: number, baseMs?: number, capMs?: number }} [options.backoff] Reconnect
   *   delays, with full jitter: the first attempt waits a random time in `[0, firstMs]`, attempt
   *   `n > 1` in `[0, min(capMs, baseMs * 2^(n-2))]`; after a 1008 close (rate-limit abuse) an
   *   attempt waits between `capMs / 2` and `capMs`.
   * @param {(code: number, reason: string) => boolean} [options.shouldReconnect] Whether to
   *   reconnect after the server closed with `code`. Default: yes, except after 1000 and
   *   4000-4999. After 4001 (token expired) the client reconnects only with `getToken`.
   */
  constructor(url, auth = {}, options = {}) {
    this.#url = endpoint(url);
    if (auth.getToken !== undefined && typeof auth.getToken !== 'function') {
      throw new TypeError('getToken must be a function');
    }
    this.#token = auth.token;
    this.#getToken = auth.getToken;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError('no WebSocket class: pass one as options.WebSocket');
    }
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.#queueLimit = options.queueLimit ?? DEFAULTS.queueLimit;
    this.#backoff = { ...DEFAULTS.backoff, ...options.backoff };
    this.#shouldReconnect = options.shouldReconnect;
    this.#open();
  }

  /**
   * Where the client is: `connecting` (first connection), `connected`
   * (`$connected` received), `reconnecting`, or `closed` (for good).
   *
   * @returns {'connecting' | 'connected' | 'reconnecting' | 'closed'}
   */
  get state() {
    return this.#state;
  }

  /**
   * The current connection's `$connected` details (`{conn, user, groups}`),
   * or null while not connected.
   *
   * @returns {{ conn: string, user: string | null, groups: string[] } | null}
   */
  get session() {
    return this.#session;
  }

  /**
   * Calls `fn(details, frame)` for every event named `action` (a server
   * action such as `chat/message`, or a lifecycle event such as
   * `$connected`).
   *
   * @param {string} action
   * @param {Listener} fn
   * @returns {() => void} A function that removes this listener.
   */
  on(action, fn) {
    return this.#listen(action, fn, false);
  }

  /**
   * Like {@link Herald#on}, for the next event named `action` only.
   *
   * @param {string} action
   * @param {Listener} fn
   * @returns {() => void} A function that removes this listener.
   */
  once(action, fn) {
    return this.#listen(action, fn, true);
  }

  /**
   * Removes `fn` from the listeners of `action` (every registration of it).
   *
   * @param {string} action
   * @param {Listener} fn
   */
  off(action, fn) {
    const list = this.#listeners.get(action);
    if (!list) return;
    const kept = list.filter((entry) => entry.fn !== fn);
    if (kept.length > 0) this.#listeners.set(action, kept);
    else this.#listeners.delete(action);
  }

  /**
   * Sends a frame without waiting for a reply. A reply the server sends
   * anyway arrives as an event named `action` (or `<action>:error`).
   * While not connected the frame waits in the outgoing queue and goes out,
   * in order, after the next `$connected`.
   *
   * @param {string} action
   * @param {unknown} [details]
   * @returns {boolean} False if the frame was dropped: the client is closed,
   *   or it is not connected and the queue is full.
   */
  send(action, details) {
    checkAction(action);
    if (this.#state === 'closed') return false;
    return this.#transmit({ action, details });
  }

  /**
   * Sends a frame with a fresh id and resolves with the details of the
   * reply. Rejects with a {@link HeraldError}: the server's code and message
   * for an error reply; {@link ClientErrorCode.TIMEOUT} when no reply came in
   * time; {@link ClientErrorCode.DISCONNECTED} when the connection was lost
   * after the frame went out (it may or may not have been handled) or the
   * client was closed; {@link ClientErrorCode.QUEUE_FULL} when it could not
   * even be queued. A request made while not connected waits in the queue,
   * and its timeout runs meanwhile.
   *
   * @param {string} action
   * @param {unknown} [details]
   * @param {{ timeout?: number }} [options] Timeout in milliseconds; default `requestTimeoutMs`.
   * @returns {Promise<any>}
   */
  request(action, details, { timeout = this.#requestTimeoutMs } = {}) {
    checkAction(action);
    if (this.#state === 'closed') {
      return Promise.reject(new HeraldError(ClientErrorCode.DISCONNECTED, 'the client is closed', { action, local: true }));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      /** @type {PendingRequest} */
      const request = {
        action,
        resolve: (value) => {
          clearTimeout(request.timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(request.timer);
          reject(error);
        },
        timer: setTimeout(() => {
          this.#forget(id);
          reject(new HeraldError(ClientErrorCode.TIMEOUT, `no reply to ${action} within ${timeout} ms`, { action, local: true }));
        }, timeout),
      };
      if (!this.#transmit({ action, details, id }, request)) {
        request.reject(new HeraldError(ClientErrorCode.QUEUE_FULL, `not connected and ${this.#queueLimit} frames are already waiting`, { action, local: true }));
      }
    });
  }

  /**
   * Joins a group (`$join`) and resolves with the reply, `{group}`. Groups
   * joined this way are joined again after every reconnect.
   *
   * @param {string} group
   * @param {{ timeout?: number }} [options]
   * @returns {Promise<{ group: string }>}
   */
  async join(group, options) {
    const reply = await this.request('$join', { group }, options);
    this.#groups.add(group);
    this.#keepPositions(reply);
    return reply;
  }

  /**
   * Leaves a group (`$leave`) and resolves with the reply, `{group}`. The
   * group is not re-joined after a reconnect, even if this fails.
   *
   * @param {string} group
   * @param {{ timeout?: number }} [options]
   * @returns {Promise<{ group: string }>}
   */
  leave(group, options) {
    this.#groups.delete(group);
    this.#positions.delete(`group:${group}`);
    return this.request('$leave', { group }, options);
  }

  /**
   * Closes the connection for good: no reconnect, waiting frames are
   * dropped, pending requests reject with {@link ClientErrorCode.DISCONNECTED},
   * and `$disconnected` is emitted with `willReconnect` false.
   */
  close() {
    if (this.#state === 'closed') return;
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(Close.NORMAL, 'client closed');
    this.#stop(Close.NORMAL, 'client closed');
  }

  /** Opens a connection, after fetching a fresh token when there is a `getToken`. */
  async #open() {
    let token = this.#token;
    if (this.#getToken) {
      try {
        token = await this.#freshToken();
      } catch (error) {
        if (this.#state === 'closed') return;
        if (this.#authExpired) {
          this.#stop(Close.AUTH_EXPIRED, `token expired and no fresh token: ${error.message}`);
        } else {
          this.#retry();
        }
        return;
      }
      if (this.#state === 'closed') return;
    }
    const url = new URL(this.#url);
    if (token) url.searchParams.set('token', token);
    if (this.#positions.size > 0) url.searchParams.set('resume', JSON.stringify(Object.fromEntries(this.#positions)));
    let socket;
    try {
      socket = new this.#WebSocket(url.href);
    } catch (error) {
      // Refused before any network traffic (e.g. a port the browser blocks): retrying cannot help.
      this.#stop(Close.ABNORMAL, `cannot open a WebSocket: ${error.message}`);
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    };
    socket.onclose = (event) => this.#closed(socket, event.code, event.reason);
    // A close event always follows an error event, and carries what we need.
    socket.onerror = () => {};
    this.#connectTimer = setTimeout(() => {
      this.#closed(socket, Close.ABNORMAL, `no $connected within ${this.#connectTimeoutMs} ms`);
      socket.close();
    }, this.#connectTimeoutMs);
  }

  /** @returns {Promise<string>} */
  async #freshToken() {
    const token = await this.#getToken();
    if (typeof token !== 'string' || token === '') throw new TypeError('getToken returned no token');
    return token;
  }

  /** Handles one incoming frame. */
  #receive(data) {
    if (typeof data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.action !== 'string') return;
    const { action, details = null, id, offset } = frame;
    if (action === '$connected') {
      this.#connected(details, frame);
      return;
    }
    if (action === '$recovered') this.#keepPositions(details);
    if (typeof offset?.of === 'string' && typeof offset.at === 'string') this.#positions.set(offset.of, offset.at);
    if (id !== undefined && id !== null) {
      this.#settle(id, action, details);
      return;
    }
    if (action === '$reauth') this.#reauthenticate();
    this.#emit(action, details, frame);
  }

  /**
   * Settles the request a reply answers: an error reply rejects it, any
   * other reply (usually with the same action; `$pong` for `$ping`)
   * resolves it. Only requests carry ids, so a reply to no pending request
   * is a late one (its request timed out or its connection ended) and is
   * dropped.
   */
  #settle(id, action, details) {
    const request = this.#pending.get(id);
    if (!request) return;
    this.#pending.delete(id);
    if (action === `${request.action}:error` || action === '$error') {
      const { code = 500, message = 'error reply without details' } = details ?? {};
      request.reject(new HeraldError(code, message, { action: request.action }));
    } else {
      request.resolve(details);
    }
  }

  /** Keeps the positions a `$recovered` or a `$join` reply gives (recovery). */
  #keepPositions(details) {
    for (const [of, at] of Object.entries(details?.offsets ?? {})) {
      if (typeof at === 'string') this.#positions.set(of, at);
    }
  }

  /**
   * The server said `$connected`: re-join groups, tell listeners (who may
   * send their own set-up frames first), then send what waited.
   */
  #connected(details, frame) {
    clearTimeout(this.#connectTimer);
    this.#state = 'connected';
    this.#session = details;
    this.#attempt = 0;
    this.#authExpired = false;
    this.#policyClose = false;
    for (const group of this.#groups) {
      // With recovery on, from where this client was in the group.
      const resume = this.#positions.get(`group:${group}`);
      const rejoin = this.request('$join', resume === undefined ? { group } : { group, resume });
      rejoin.then((reply) => {
        if (typeof reply?.recovered !== 'boolean') return; // the group keeps no history
        this.#keepPositions(reply);
        this.#emit('$recovered', reply);
      }, (error) => {
        if (error.local) return; // kept: tried again after the next reconnect
        this.#groups.delete(group);
        this.#emit('$join:error', { group, code: error.code, message: error.message });
      });
    }
    this.#emit('$connected', details, frame);
    if (this.#state !== 'connected') return; // a listener closed the client
    const waiting = this.#queue;
    this.#queue = [];
    for (const { id, text, request } of waiting) {
      if (request) this.#pending.set(id, request);
      this.#socket.send(text);
    }
  }

  /** `$reauth`: send `$auth` with a fresh token, if there is a `getToken`. */
  async #reauthenticate() {
    if (!this.#getToken) return;
    try {
      await this.request('$auth', { token: await this.#freshToken() });
    } catch (error) {
      const code = error instanceof HeraldError ? error.code : 401; // getToken failed: no valid token
      this.#emit('$auth:error', { code, message: error.message });
    }
  }

  /** A socket closed (or was given up): decide whether and when to try again. */
  #closed(socket, code, reason) {
    if (socket !== this.#socket) return;
    this.#socket = null;
    clearTimeout(this.#connectTimer);
    const wasConnected = this.#state === 'connected';
    this.#session = null;
    this.#failPending(code, reason);
    if (code === Close.AUTH_EXPIRED) this.#authExpired = true;
    this.#policyClose = code === Close.POLICY;
    const willReconnect =
      code === Close.AUTH_EXPIRED
        ? this.#getToken !== undefined
        : (this.#shouldReconnect ?? reconnectsByDefault)(code, reason);
    if (!willReconnect) {
      this.#stop(code, reason);
      return;
    }
    this.#state = 'reconnecting';
    if (wasConnected) this.#emit('$disconnected', { code, reason, willReconnect: true });
    if (this.#state === 'reconnecting') this.#retry(); // unless a listener closed the client
  }

  /** Schedules the next connection attempt. */
  #retry() {
    this.#state = 'reconnecting';
    this.#attempt += 1;
    const { firstMs, baseMs, capMs } = this.#backoff;
    // The first attempt is quick: a connection is most often lost because
    // its server went away (killed, or restarting with 1012), and the load
    // balancer sends the new one to another server at once. Jitter still
    // spreads a whole server's clients over `firstMs`. Only if that fails
    // too does the exponential back-off start.
    const windowMs = this.#attempt === 1 ? firstMs : baseMs * 2 ** (this.#attempt - 2);
    const delayMs = Math.round(
      this.#policyClose ? capMs / 2 + (Math.random() * capMs) / 2 : Math.random() * Math.min(capMs, windowMs),
    );
    this.#emit('$reconnecting', { attempt: this.#attempt, delayMs });
    this.#retryTimer = setTimeout(() => this.#open(), delayMs);
  }

  /** Stops for good. */
  #stop(code, reason) {
    this.#state = 'closed';
    this.#session = null;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    this.#failPending(code, reason);
    for (const { request } of this.#queue.splice(0)) {
      request?.reject(new HeraldError(ClientErrorCode.DISCONNECTED, 'the client stopped before the request was sent', { action: request.action, local: true }));
    }
    this.#emit('$disconnected', { code, reason, willReconnect: false });
  }

  /** Rejects every request waiting for a reply: the connection ended with `code`. */
  #failPending(code, reason) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const message = `connection closed (${code}${reason ? ` ${reason}` : ''}) before the reply`;
    for (const request of pending) {
      request.reject(new HeraldError(ClientErrorCode.DISCONNECTED, message, { action: request.action, local: true }));
    }
  }

  /**
   * Sends a frame now if connected, else queues it.
   *
   * @returns {boolean} False if it had to be queued and the queue is full.
   */
  #transmit(frame, request) {
    const text = JSON.stringify(frame);
    if (this.#state === 'connected') {
      if (request) this.#pending.set(frame.id, request);
      this.#socket.send(text);
      return true;
    }
    if (this.#queue.length >= this.#queueLimit) return false;
    this.#queue.push({ id: frame.id, text, request });
    return true;
  }

  /** Forgets a request that timed out, sent or still queued. */
  #forget(id) {
    if (this.#pending.delete(id)) return;
    const index = this.#queue.findIndex((entry) => entry.id === id);
    if (index >= 0) this.#queue.splice(index, 1);
  }

  #listen(action, fn, once) {
    if (typeof fn !== 'function') throw new TypeError('a listener must be a function');
    const list = this.#listeners.get(action) ?? [];
    const entry = { fn, once };
    this.#listeners.set(action, [...list, entry]);
    return () => {
      const current = this.#listeners.get(action);
      if (!current) return;
      const kept = current.filter((other) => other !== entry);
      if (kept.length > 0) this.#listeners.set(action, kept);
      else this.#listeners.delete(action);
    };
  }

  /**
   * Calls the listeners of `action`. A listener that throws does not stop
   * the others or the client: its error is rethrown on its own, where the
   * platform reports uncaught errors.
   */
  #emit(action, details, frame = { action, details }) {
    const list = this.#listeners.get(action);
    if (!list) return;
    const once = list.filter((entry) => entry.once);
    if (once.length > 0) {
      const kept = list.filter((entry) => !entry.once);
      if (kept.length > 0) this.#listeners.set(action, kept);
      else this.#listeners.delete(action);
    }
    for (const { fn } of list) {
      try {
        fn(details, frame);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * The WebSocket URL of `url`: `http(s)` becomes `ws(s)`, and a relative URL
 * is resolved against the page, where there is one.
 *
 * @param {string | URL} url
 * @returns {URL}
 */
function endpoint(url) {
  const resolved = new URL(url, globalThis.location?.href);
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') {
    throw new TypeError(`not a WebSocket URL: ${url}`);
  }
  return resolved;
}

/** @param {unknown} action */
function checkAction(action) {
  if (typeof action !== 'string' || action === '') throw new TypeError('an action is a non-empty string');
}

/**
 * @callback Listener
 * @param {any} details The event's details.
 * @param {{ action: string, details: any, id?: string | number }} frame The whole frame.
 * @returns {void}
 */

/**
 * @typedef {object} PendingRequest
 * @property {string} action
 * @property {(details: any) => void} resolve
 * @property {(error: HeraldError) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */
