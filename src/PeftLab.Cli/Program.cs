using PeftLab.Runtime;
using TorchSharp;
TorchRuntime.EnsureInitialised();
Console.WriteLine(NativeLoader.Report);
using var a = torch.randn(1024, 1024);
var sw = System.Diagnostics.Stopwatch.StartNew();
for (int i = 0; i < 20; i++) { using var c = a.matmul(a); }
Console.WriteLine($"{20 * 2.0 * 1024 * 1024 * 1024 / sw.Elapsed.TotalSeconds / 1e9:F1} GFLOP/s, threads {torch.get_num_threads()}");
return 0;
