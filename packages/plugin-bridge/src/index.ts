export {
  bridgePlugin,
  hostVethName,
  namespaceOf,
  masqChain,
  type BridgeConfig,
  type BridgePluginOptions,
} from "./bridge.js";
