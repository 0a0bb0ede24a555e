// Every provider @podnet/providers lists, held to the provider contract on the simulator; @podnet/lab
// runs the same suite on real namespaces.
import { providers } from "@podnet/providers";
import { describeProviderConformance } from "../src/conformance.js";
import { SimBackend } from "../src/index.js";

describeProviderConformance("the simulator", { providers, backend: (seed) => new SimBackend(seed) });
