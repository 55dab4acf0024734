/**
 * Review: `<BelfryProvider>` checks none of its props, where the client, belfry/shared and belfry/desktop
 * throw a TypeError that says what they got and what they expect.
 * - `maxItems` NaN or negative is taken: `slice(0, NaN)` keeps nothing, and `slice(0, -1)` drops the
 *   oldest item at every change (a live notification alone is dropped at once), so `useNotifications()`
 *   silently shows an empty or shrinking list, with `hasMore` false.
 * - No `client` (a prop left out or an undefined variable) fails in the layout effect with the engine's
 *   "Cannot read properties of undefined (reading 'on')", which names neither the prop nor what it takes.
 */
import { act, render, cleanup as unmountAll } from '@testing-library/react'
import { Component, type ReactNode } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BelfryProvider, useNotifications } from '../../src/react/index.js'
import { cleanup, createClient, startMockServer, tick } from '../helpers/mock-server.js'

beforeEach(() => {
  vi.useFakeTimers()
  // React logs what an error boundary catches.
  vi.spyOn(console, 'error').mockImplementation(() => {})
})
afterEach(() => {
  unmountAll()
  cleanup()
})

const settle = (ms = 20) => act(() => tick(ms))

/** Keeps what its children threw (in render or in an effect). */
class Catch extends Component<{ caught: unknown[]; children: ReactNode }, { failed: boolean }> {
  override state = { failed: false }
  static getDerivedStateFromError() {
    return { failed: true }
  }
  override componentDidCatch(error: unknown) {
    this.props.caught.push(error)
  }
  override render() {
    return this.state.failed ? null : this.props.children
  }
}

function List() {
  const { notifications } = useNotifications()
  return <p data-testid="count">{notifications.length}</p>
}

describe('BelfryProvider: a bad prop is a TypeError that names it', () => {
  it('refuses a maxItems that is no count (NaN, negative)', async () => {
    for (const maxItems of [Number.NaN, -1]) {
      const server = startMockServer()
      const caught: unknown[] = []
      render(
        <Catch caught={caught}>
          <BelfryProvider client={() => createClient(server).client} maxItems={maxItems}>
            <List />
          </BelfryProvider>
        </Catch>,
      )
      await settle()
      expect(caught[0], `maxItems ${maxItems}`).toBeInstanceOf(TypeError)
      expect((caught[0] as Error).message).toMatch(/maxItems/)
      unmountAll()
    }
  })

  it('refuses a missing client, naming the prop', async () => {
    const caught: unknown[] = []
    render(
      <Catch caught={caught}>
        <BelfryProvider client={undefined as never}>
          <List />
        </BelfryProvider>
      </Catch>,
    )
    await settle()
    expect(caught[0]).toBeInstanceOf(TypeError)
    expect((caught[0] as Error).message).toMatch(/client/)
  })
})
