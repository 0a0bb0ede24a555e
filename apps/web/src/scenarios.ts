// The bundled scenarios, shipped with the app as text (Vite's ?raw imports).
import churn from "../../../scenarios/churn.yaml?raw";
import routed from "../../../scenarios/routed-segments.yaml?raw";
import service from "../../../scenarios/service.yaml?raw";
import singlePod from "../../../scenarios/single-pod.yaml?raw";
import twoNodes from "../../../scenarios/two-nodes.yaml?raw";

export const BUNDLED: Record<string, string> = {
  "two-nodes": twoNodes,
  "single-pod": singlePod,
  "routed-segments": routed,
  service,
  churn,
};
