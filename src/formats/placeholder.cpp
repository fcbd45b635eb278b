// Placeholder translation unit so the library exists before its sources land.
