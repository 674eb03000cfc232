import { describe, expect, it } from 'vitest'
import { memoryStore } from '../../../src/store/memory-store.js'
import { describeSecretStoreContract } from './secret-store-contract.js'

describeSecretStoreContract('memoryStore', async () => memoryStore())

describe('memoryStore', () => {
  it('is the "none" store and starts from the given entries', async () => {
    const store = memoryStore({ 'p/k': 'v' })
    expect(store.kind).toBe('none')
    expect(await store.get('p/k')).toBe('v')
    await store.set('p/j', 'w')
    expect([...store.entries]).toEqual([
      ['p/k', 'v'],
      ['p/j', 'w'],
    ])
  })
})
