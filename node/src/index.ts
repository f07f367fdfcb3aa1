export { AuditIndex, type IndexedChain } from "./audit/auditIndex.js";
export { AuditService } from "./audit/auditService.js";
export { type BackupProgress, restoreBackup, writeBackup } from "./backup/backup.js";
export { type BackupManifest, readBackup } from "./backup/format.js";
export { buildBlock, commitOf } from "./chain/blockBuilder.js";
export { openChainLedger } from "./chain/openLedger.js";
export { type CommittedBlock, PbftDriver } from "./chain/pbftDriver.js";
export { DEFAULT_CONFIG, homePaths, loadConfig, type NodeConfig } from "./config.js";
export { FileWal } from "./consensus/fileWal.js";
export {
  createDevMembers,
  DEV_CHAIN,
  DEV_MEMBERS,
  DEV_TIERS,
  type DevAccount,
  devGenesis,
} from "./devChain.js";
export { Executor } from "./execution/executor.js";
export { readGenesis } from "./home.js";
export { type InitOptions, type InitResult, initHome } from "./init.js";
export { Ledger } from "./ledger/ledger.js";
export { type LedgerReset, resetLedger } from "./ledger/resetLedger.js";
export { spreadWriteBuffers, writeBufferFor } from "./ledger/writeBuffer.js";
export { CustosNode, causeChain, type StartOptions } from "./node.js";
export { Channel, type NetworkPeer, P2pNetwork } from "./p2p/network.js";
export { peersOf } from "./p2p/peers.js";
export { RpcCode } from "./rpc/errors.js";
export { type ApiKey, RpcServer } from "./rpc/server.js";
export { chunkDigest, decodeChunk, encodeChunk, type SnapshotMeta } from "./snapshot/snapshot.js";
export { readSnapshotFile, SnapshotStore, writeSnapshotFile } from "./snapshot/store.js";
export { Overlay, type StateReader } from "./state/overlay.js";
export { genesisMemberWrites } from "./system/members.js";
export { TxPool } from "./txpool/txpool.js";
