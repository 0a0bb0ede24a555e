#!/usr/bin/env node
import "../dist/podnet-bridge.js";
