import { describe } from "vitest";
import { seedRange } from "./seedRange.js";

// one of four files so that vitest spreads the 2,000 CI seeds over both cores
describe("simulator", () => seedRange(4, 1, 700));
