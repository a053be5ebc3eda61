import grpc, time, sys
sys.path.insert(0, 'clients/python')
port = sys.argv[1]
ch = grpc.insecure_channel(f'127.0.0.1:{port}')
from flanstream._proto.flanstream.v1 import data_service_pb2_grpc as g, data_service_pb2 as pb
stub = g.DataServiceStub(ch)
t0 = time.time()
try:
    stub.GetCorpusInfo(pb.GetCorpusInfoRequest(), metadata=[('authorization', 'Bearer ' + 'x'*int(sys.argv[2]))], timeout=5)
except grpc.RpcError as e:
    print(e.code(), e.details()[:100], time.time() - t0)
