/**
 * Tokens for the local cluster: HS256 JWTs signed with the cluster's
 * secret, as a backend would sign them. Used by the demo site's /dev/token
 * and by the failure suite's clients.
 */

import { createHmac } from 'node:crypto';

/** How long a token is valid, in seconds. */
const LIFETIME_SECS = 3600;

/**
 * A token for `user`, valid for an hour, with extra claims (`groups`, ...).
 *
 * @param {string} secret
 * @param {string} user
 * @param {object} [claims]
 * @returns {string}
 */
export function mintToken(secret, user, claims = {}) {
  const body = { sub: user, exp: Math.floor(Date.now() / 1000) + LIFETIME_SECS, ...claims };
  const head = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(body))}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** @param {string} text */
function base64url(text) {
  return Buffer.from(text).toString('base64url');
}
