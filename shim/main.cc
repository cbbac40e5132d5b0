int main() { return 2; }  // replaced by the shim's entry point below in this series
