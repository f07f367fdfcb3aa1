/** The gossip topics of a chain. */
export const topics = (chainId: string) => ({
  txs: `/custos/${chainId}/txs/1`,
  blocks: `/custos/${chainId}/blocks/1`,
});
