// Compile-time checks of herald.d.ts (`npm run typecheck`); never run.

import WebSocket from 'ws';
import { ClientErrorCode, Herald, HeraldError, type ConnectedDetails } from '../herald.js';

const herald = new Herald('wss://example.com/ws', { getToken: async () => 'token' }, { queueLimit: 10, backoff: { capMs: 5000 } });
new Herald('/ws', { token: 'token' });
new Herald(new URL('ws://localhost/ws'));
new Herald('ws://localhost/ws', {}, { WebSocket });
new Herald('ws://localhost/ws', {}, { WebSocket: globalThis.WebSocket, shouldReconnect: (code) => code !== 4003 });

const off: () => void = herald.on('$connected', (details: ConnectedDetails) => details.conn.length);
off();
herald.on('$disconnected', ({ code, willReconnect }) => (willReconnect ? code : 0));
herald.once('$reconnecting', ({ attempt, delayMs }) => attempt + delayMs);
herald.on<{ text: string }>('chat/message', (details, frame) => details.text + frame.action);
herald.off('chat/message', () => {});

const sent: boolean = herald.send('chat/send', { room: 'lobby', text: 'hi' });
async function use(): Promise<void> {
  const reply = await herald.request<{ room: string }>('chat/join', { room: 'lobby' }, { timeout: 1000 });
  reply.room.toUpperCase();
  const { group } = await herald.join('team');
  await herald.leave(group);
  try {
    await herald.request('echo');
  } catch (error) {
    if (error instanceof HeraldError && error.local && error.code === ClientErrorCode.TIMEOUT) herald.close();
  }
}
const state: 'connecting' | 'connected' | 'reconnecting' | 'closed' = herald.state;
const user: string | null | undefined = herald.session?.user;
export { sent, use, state, user };

// @ts-expect-error token and getToken are exclusive
new Herald('/ws', { token: 't', getToken: () => 't' });
