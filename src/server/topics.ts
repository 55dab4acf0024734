import type { SubscribeAuthorizer } from './options.js'

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
  return (_userId, topic, claims) => {
    const granted = claims[claim]
    return (
      Array.isArray(granted) &&
      granted.some((g) => typeof g === 'string' && (g === topic || (g.endsWith(':*') && topic.startsWith(g.slice(0, -1)))))
    )
  }
}
