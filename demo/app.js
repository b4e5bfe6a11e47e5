/**
 * The Herald chat demo: sign in under any name (`herald dev` hands out a
 * token for it at /dev/token), join a room, chat, see who is online and
 * the state of the connection.
 *
 * It uses only the public client, /sdk/herald.js, and the example chat
 * handler's actions:
 * - `chat/join {room}` and `chat/leave {room}`, announced to the room as
 *   `chat/joined` / `chat/left {room, user}`;
 * - `chat/send {room, text}`, delivered to the room as
 *   `chat/message {room, user, text, at}`;
 * - `chat/who {room}` → `{room, users}`, when the handler has it; without
 *   it (a 404 error reply) presence is tracked from joined/left alone.
 *
 * The client reconnects by itself; after every `$connected` the page joins
 * its room again, and asks who is there. Where the server keeps a history
 * (missed-message recovery, the local cluster with HERALD_HISTORY), the
 * client resumes from where it was and says so with `$recovered`: the
 * page then shows whether every message sent meanwhile was delivered.
 */

import { Herald, HeraldError } from '/sdk/herald.js';

const $ = (id) => document.getElementById(id);

const ui = {
  status: $('status'),
  statusText: $('status-text'),
  signIn: $('sign-in'),
  signInForm: $('sign-in-form'),
  name: $('name'),
  room: $('room'),
  signInError: $('sign-in-error'),
  chat: $('chat'),
  roomName: $('room-name'),
  me: $('me'),
  signOut: $('sign-out'),
  online: $('online'),
  onlineCount: $('online-count'),
  messages: $('messages'),
  sendForm: $('send-form'),
  text: $('text'),
  sendNote: $('send-note'),
};

/** Room names the chat handler takes. */
const ROOM = /^[A-Za-z0-9_-]{1,64}$/;

/** How long leaves are gathered before asking `chat/who`. */
const WHO_DELAY_MS = 150;

/**
 * The session: one per sign-in.
 *
 * - `presence`: who is online; `whoSupported`: whether `chat/who` exists;
 * - `events`: how many joined/left events came, and `latest`, each user's
 *   last one (its number, and whether it was a join), to tell which events
 *   are newer than a `chat/who` answer;
 * - `inRoom`: joined on the current connection; `waiters`: sends waiting for it.
 *
 * @type {{ client: Herald, me: string, room: string, presence: Set<string>, whoSupported: boolean,
 *          events: number, latest: Map<string, { event: number, joined: boolean }>,
 *          inRoom: boolean, waiters: Array<{ resolve: () => void, reject: (e: Error) => void }>,
 *          away: boolean,
 *          whoTimer?: ReturnType<typeof setTimeout> } | null}
 */
let session = null;

// ---------------------------------------------------------------- tokens

/**
 * A dev token for `user`, from `herald dev` or the local cluster's site;
 * the site's token also puts the connection in `room`'s group from the
 * start, which is what a resuming connection recovers.
 *
 * @param {string} user
 * @param {string} room
 * @returns {Promise<string>}
 */
async function fetchToken(user, room) {
  const query = `user=${encodeURIComponent(user)}&room=${encodeURIComponent(room)}`;
  const response = await fetch(`/dev/token?${query}`, { cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `the token request failed (${response.status})`);
  return body.token;
}

// ---------------------------------------------------------------- signing in and out

ui.signInForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  const room = ui.room.value.trim();
  if (!name) return showSignInError('Pick a name.', ui.name);
  if (!ROOM.test(room)) return showSignInError('A room name is 1 to 64 letters, digits, _ or -.', ui.room);
  showSignInError('');
  const button = ui.signInForm.querySelector('button');
  button.disabled = true;
  setStatus('connecting', 'Connecting…');
  try {
    // The first token checks the name; the client asks for fresh ones
    // before every reconnect and when the server sends $reauth.
    let first = await fetchToken(name, room);
    const getToken = () => {
      const token = first ?? fetchToken(name, room);
      first = null;
      return token;
    };
    start(name, room, new Herald('/ws', { getToken }));
  } catch (error) {
    setStatus('idle', 'Not connected');
    showSignInError(`Cannot sign in: ${error.message}`, ui.name);
  } finally {
    button.disabled = false;
  }
});

ui.signOut.addEventListener('click', () => {
  // Tell the room at once; closing alone would tell it too, once Herald
  // notices the connection is gone.
  if (session?.inRoom) session.client.send('chat/leave', { room: session.room });
  stop();
});

/**
 * @param {string} message Empty to hide the error.
 * @param {HTMLElement} [field] Focused, to fix it.
 */
function showSignInError(message, field) {
  ui.signInError.textContent = message;
  ui.signInError.hidden = !message;
  field?.focus();
}

/**
 * Starts a session as `me` in `room` over `client`.
 *
 * @param {string} me
 * @param {string} room
 * @param {Herald} client
 */
function start(me, room, client) {
  const current = {
    client,
    me,
    room,
    presence: new Set(),
    whoSupported: true,
    events: 0,
    latest: new Map(),
    inRoom: false,
    waiters: [],
    away: false,
  };
  session = current;
  ui.messages.replaceChildren();
  renderPresence(current);
  ui.roomName.textContent = room;
  ui.me.textContent = me;
  ui.signIn.hidden = true;
  ui.chat.hidden = false;
  ui.sendNote.textContent = '';
  ui.text.focus();

  /** Listens while this session is the page's. */
  const on = (action, fn) =>
    client.on(action, (details) => {
      if (session === current) fn(details);
    });
  on('$connected', () => {
    setStatus('connected', 'Connected');
    ui.sendNote.textContent = '';
    enterRoom(current);
  });
  on('$disconnected', ({ code, reason, willReconnect }) => {
    leaveRoomState(current);
    current.away = true;
    if (willReconnect) {
      setStatus('reconnecting', 'Reconnecting…');
      return;
    }
    const why = reason ? `${reason} (${code})` : `code ${code}`;
    stop(`Disconnected: ${why}. Join again to continue.`);
  });
  on('$reconnecting', ({ attempt }) => setStatus('reconnecting', `Reconnecting (attempt ${attempt})…`));
  // With a history on the server: after a reconnect, whether the messages
  // sent meanwhile were all delivered (they arrive before this).
  on('$recovered', ({ recovered, group }) => {
    if (!current.away || group !== undefined) return;
    current.away = false;
    addNotice(
      recovered
        ? 'Reconnected: every message sent meanwhile was delivered (recovered).'
        : 'Reconnected: messages sent meanwhile could not be recovered; some may be missing.',
    );
  });
  on('chat/message', (message) => {
    if (message.room === current.room) addMessage(current, message);
  });
  on('chat/joined', ({ room: r, user }) => presenceChanged(current, r, user, true));
  on('chat/left', ({ room: r, user }) => presenceChanged(current, r, user, false));
}

/**
 * Ends the session: closes the client and goes back to the sign-in form.
 *
 * @param {string} [error] Why, when the session ended by itself.
 */
function stop(error = '') {
  if (!session) return;
  const { client } = session;
  leaveRoomState(session, new Error('you left the room'));
  clearTimeout(session.whoTimer);
  session = null;
  client.close();
  ui.chat.hidden = true;
  ui.signIn.hidden = false;
  setStatus(error ? 'disconnected' : 'idle', error ? 'Disconnected' : 'Not connected');
  showSignInError(error, ui.name);
  if (!error) ui.name.focus();
}

// ---------------------------------------------------------------- the room

/**
 * Joins the room on the current connection, then asks who is there. Run
 * after every `$connected`: a new connection is in no room.
 */
async function enterRoom(current) {
  try {
    await current.client.request('chat/join', { room: current.room });
  } catch (error) {
    if (error instanceof HeraldError && error.local) return; // lost again: the next $connected retries
    if (session === current) stop(`Cannot join #${current.room}: ${error.message}`);
    return;
  }
  if (session !== current) return;
  current.inRoom = true;
  for (const { resolve } of current.waiters.splice(0)) resolve();
  // Filled in quietly: after a server restart everyone comes back at once,
  // and their chat/joined say so.
  await refreshWho(current, false);
  if (!current.whoSupported) setPresence(current, [...current.presence, current.me], false);
}

/**
 * The connection is gone, so is the room membership: sends wait (or, with
 * `error`, fail).
 */
function leaveRoomState(current, error) {
  current.inRoom = false;
  if (error) for (const { reject } of current.waiters.splice(0)) reject(error);
}

/** Resolves once the session is in its room. */
function whenInRoom(current) {
  if (current.inRoom) return Promise.resolve();
  return new Promise((resolve, reject) => current.waiters.push({ resolve, reject }));
}

// ---------------------------------------------------------------- presence

/**
 * Asks `chat/who` and shows the answer. A 404 means the handler does not
 * have it: from then on, joined/left events alone keep the list.
 *
 * @param {boolean} announce Whether to show who came and went.
 */
async function refreshWho(current, announce) {
  if (!current.whoSupported) return;
  const asked = current.events;
  try {
    const { users } = await current.client.request('chat/who', { room: current.room });
    if (session !== current) return;
    // The answer may be older than joined/left events that came meanwhile:
    // those win.
    const present = new Set(users);
    for (const [user, { event, joined }] of current.latest) {
      if (event <= asked) continue;
      if (joined) present.add(user);
      else present.delete(user);
    }
    setPresence(current, [...present], announce);
  } catch (error) {
    if (error instanceof HeraldError && !error.local && error.code === 404) current.whoSupported = false;
  }
}

/**
 * Someone joined or left the room. A join is shown at once. A leave is
 * checked with `chat/who` first: the same user may still be there in
 * another tab. Without `chat/who`, the events are taken as they come.
 */
function presenceChanged(current, room, user, joined) {
  if (room !== current.room) return;
  current.events += 1;
  current.latest.set(user, { event: current.events, joined });
  if (joined || !current.whoSupported) {
    const users = new Set(current.presence);
    if (joined) users.add(user);
    else users.delete(user);
    setPresence(current, [...users], true);
    return;
  }
  clearTimeout(current.whoTimer);
  current.whoTimer = setTimeout(() => refreshWho(current, true), WHO_DELAY_MS);
}

/**
 * Replaces the list of people online.
 *
 * @param {string[]} users
 * @param {boolean} announce Add "X joined" / "X left" lines for the differences.
 */
function setPresence(current, users, announce) {
  const next = new Set(users);
  if (announce) {
    for (const user of next) if (!current.presence.has(user) && user !== current.me) addNotice(`${user} joined`);
    for (const user of current.presence) if (!next.has(user) && user !== current.me) addNotice(`${user} left`);
  }
  current.presence = next;
  renderPresence(current);
}

/** Shows who is online, the session's own user marked. */
function renderPresence(current) {
  const users = [...current.presence].sort((a, b) => a.localeCompare(b));
  ui.online.replaceChildren(
    ...users.map((user) => {
      const item = document.createElement('li');
      item.textContent = user;
      if (user === current.me) {
        item.classList.add('self');
        item.append(' ', Object.assign(document.createElement('span'), { className: 'you', textContent: '(you)' }));
      }
      return item;
    }),
  );
  ui.onlineCount.textContent = String(users.length);
}

// ---------------------------------------------------------------- messages

ui.sendForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const current = session;
  const text = ui.text.value.trim();
  if (!current || !text || ui.sendForm.dataset.busy) return;
  ui.sendForm.dataset.busy = 'true';
  ui.sendForm.querySelector('button').disabled = true;
  ui.sendNote.textContent = current.inRoom ? '' : 'Waiting for the connection…';
  try {
    await whenInRoom(current);
    await current.client.request('chat/send', { room: current.room, text });
    if (ui.text.value.trim() === text) ui.text.value = '';
    ui.sendNote.textContent = '';
  } catch (error) {
    if (session === current) ui.sendNote.textContent = `Not sent: ${error.message}`;
  } finally {
    delete ui.sendForm.dataset.busy;
    ui.sendForm.querySelector('button').disabled = false;
    if (session === current) ui.text.focus();
  }
});

/** @param {{ user: string, text: string, at: string }} message */
function addMessage(current, { user, text, at }) {
  const item = document.createElement('li');
  item.className = user === current.me ? 'message own' : 'message';
  item.dataset.user = user;
  const head = document.createElement('p');
  head.className = 'meta';
  const author = Object.assign(document.createElement('span'), { className: 'author', textContent: user });
  const time = document.createElement('time');
  time.dateTime = at;
  time.textContent = new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  head.append(author, ' ', time);
  const body = Object.assign(document.createElement('p'), { className: 'text', textContent: text });
  item.append(head, body);
  append(item);
}

/** @param {string} text */
function addNotice(text) {
  append(Object.assign(document.createElement('li'), { className: 'notice', textContent: text }));
}

/** Appends to the log, following it if the reader was at the bottom. */
function append(item) {
  const log = ui.messages;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------- connection state

/**
 * @param {'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected'} state
 * @param {string} text
 */
function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.statusText.textContent = text;
}
