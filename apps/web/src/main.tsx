// The shell in index.html is painted at once; the app's code, in its own chunk, is fetched right after.
import "./styles.css";

void import("./boot.js");
