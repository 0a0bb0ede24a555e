#!/usr/bin/env node
import "../dist/podnet-portmap.js";
