import { type SubscribeAuthorizer, shown } from './options.js'

/**
 * An authorizer that reads the topics a user may subscribe to from a claim
 * of the user's token (`topics` unless named): a list of exact topic names
 * and `prefix:*` patterns, which allow every topic that starts with `prefix:`.
 * A token without the claim may subscribe to nothing.
 *
 * @example
 * // token payload: { sub: 'ann', exp: …, topics: ['deploys', 'tenant:acme:*'] }
 * new NotificationServer({ secret, authorizeSubscribe: topicsClaim() })
 */
export function topicsClaim(claim = 'topics'): SubscribeAuthorizer {
  // Any other key reads a claim no token has: every subscription refused, with nothing to point at this option.
  if (typeof claim !== 'string' || claim === '')
    throw new TypeError(`topicsClaim: claim must be a claim's name, a non-empty string; got ${shown(claim)}`)
  return (_userId, topic, claims) => {
    const granted = claims[claim]
    return (
      Array.isArray(granted) &&
      granted.some((g) => typeof g === 'string' && (g === topic || (g.endsWith(':*') && topic.startsWith(g.slice(0, -1)))))
    )
  }
}
