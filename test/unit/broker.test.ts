import { InProcessBroker } from '../../src/server/broker/broker.js'
import { brokerContract } from '../contract/broker.js'

brokerContract('InProcessBroker', async () => {
  const broker = new InProcessBroker()
  return { node: async () => broker, dispose: async () => broker.close() }
})
