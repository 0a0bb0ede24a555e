export { bridgePlugin, hostVethName, namespaceOf, type BridgeConfig, type BridgePluginOptions } from "./bridge.js";
