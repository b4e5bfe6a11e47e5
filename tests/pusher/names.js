/** Herald's names for Pusher's: subjects of channels, connection ids of socket ids. */

/**
 * The NATS subject of group `name`: a name made only of `A-Z a-z 0-9 _ - : @`
 * is its own token, any other is `~` and its unpadded base64url.
 */
export function groupSubject(name) {
  const token = /^[A-Za-z0-9_\-:@]+$/.test(name) ? name : `~${Buffer.from(name).toString('base64url')}`;
  return `herald.group.${token}`;
}

/** The Herald connection id a socket id names: the edge part back in 16 hex digits. */
export function connIdOf(socketId) {
  const [edge, local] = socketId.split('.');
  return `${BigInt(edge).toString(16).padStart(16, '0')}.${local}`;
}
