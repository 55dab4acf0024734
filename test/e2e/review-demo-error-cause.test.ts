/**
 * Review: when the dev token route refuses, the demo's footer must say why.
 * dev.ts words the refusal ("token: <the server's message>"), but the client
 * reports it as the cause of a BelfryError("url or token provider failed"),
 * and the footer (dom.ts describe) shows only the outer message.
 */
import { describe, expect, it } from 'vitest'
import { useDemo } from './harness.js'

const e2e = useDemo('review-error-cause-', { width: 1100, height: 760 })

describe('demo error line', () => {
  it("shows the dev token route's reason when it refuses the user id", async () => {
    // Chromium logs the 400 of the token fetch itself.
    e2e.allow(/Failed to load resource: the server responded with a status of 400/)
    // README: "?user=bob in the URL signs in directly"; this id is longer than the 64 characters a user id may have.
    const page = await e2e.open(`/?user=${'x'.repeat(65)}`)
    const error = page.locator('[data-testid="error"]')
    await error.waitFor({ state: 'visible', timeout: 10_000 })
    // Shown: "… · BelfryError: url or token provider failed", and nothing of why.
    await expect.poll(() => error.textContent(), { timeout: 5_000 }).toContain('"user" must be a user id')
  })
})
