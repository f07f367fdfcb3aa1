{
  "targets": [
    {
      "target_name": "sm2native",
      "sources": ["src/sm2.c", "src/sm2_curve.c"],
      "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wno-unused-parameter"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2", "-std=gnu11"] }
    }
  ]
}
